"""Appending takes no global lock; the sealer alone orders and chains, once, whoever runs it.

The statements a request sends are counted with ``CaptureQueriesContext``: ``batched()``
writes N events in one INSERT, and no append reads or writes the chain head.  Concurrency is
real: threads with their own connections (and, in ``test_verify_command.py``, processes), on
committed data (``transaction=True``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from piwarden.audit.chain import seal, seal_every, verify
from piwarden.audit.log import EventType, batched, record_event, verify_chain
from piwarden.audit.models import AuditChainHead, AuditEvent

HEAD_TABLE = AuditChainHead._meta.db_table
EVENT_TABLE = AuditEvent._meta.db_table


def record(n: int, *, who: str = "") -> None:
    for i in range(n):
        record_event(EventType.STAFF_SIGN_IN_FAILED, purpose="security", extra={"attempt": i, "who": who})


def sealed_seqs() -> list[int]:
    return list(AuditEvent.objects.exclude(seq=None).order_by("seq").values_list("seq", flat=True))


@pytest.fixture
def threads() -> Iterator[list[threading.Thread]]:
    """Threads a test starts; each closes its own connection, and all are joined at the end."""
    started: list[threading.Thread] = []
    yield started
    for thread in started:
        thread.join(timeout=30)
        assert not thread.is_alive()


def in_thread(threads: list[threading.Thread], work: object, *args: object) -> threading.Thread:
    def run() -> None:
        try:
            work(*args)  # type: ignore[operator]  # a callable
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    threads.append(thread)
    thread.start()
    return thread


@pytest.mark.django_db
def test_batched_writes_n_events_in_one_statement_and_never_touches_the_head() -> None:
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries, batched():
            record(7)
            assert not queries.captured_queries  # buffered until the block exits
        assert len(queries.captured_queries) == 1
        (sql,) = [q["sql"] for q in queries.captured_queries]
        # PostgreSQL: one INSERT of 7 rows; SQLite: one prepared INSERT run 7 times (executemany).
        assert sql.startswith((f'INSERT INTO "{EVENT_TABLE}"', f'7 times: INSERT INTO "{EVENT_TABLE}"'))
        assert HEAD_TABLE not in sql
    assert AuditEvent.objects.count() == 7
    assert AuditEvent.objects.filter(seq=None).count() == 7  # appended, not yet sealed
    assert verify_chain() is None


@pytest.mark.django_db
def test_without_batched_each_event_is_one_insert_at_once() -> None:
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        record(3)
        assert AuditEvent.objects.count() == 3
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 3
    assert not any(HEAD_TABLE in q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db
def test_a_block_left_by_an_exception_writes_nothing() -> None:
    def failing_change() -> None:
        with transaction.atomic(), batched():
            record(2)
            raise LookupError("the change failed")

    with pytest.raises(LookupError):
        failing_change()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_appending_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        record(1)
    with pytest.raises(RuntimeError, match="inside the transaction"), batched():
        record(1)
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_sealing_is_idempotent() -> None:
    with transaction.atomic():
        record(5)
    assert seal() == 5
    chained = list(AuditEvent.objects.values_list("id", "seq", "prev_hash", "hash"))
    assert seal() == 0
    assert list(AuditEvent.objects.values_list("id", "seq", "prev_hash", "hash")) == chained
    with transaction.atomic():
        record(2)
    assert seal() == 2
    assert sealed_seqs() == [1, 2, 3, 4, 5, 6, 7]
    assert AuditChainHead.objects.get().seq == 7
    assert verify() is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_and_two_concurrent_sealers_make_one_unbroken_chain(threads) -> None:
    start = threading.Barrier(2)

    def append(who: str) -> None:
        start.wait()
        for _ in range(10):
            with transaction.atomic(), batched():
                record(3, who=who)
            with transaction.atomic():
                record(1, who=who)

    in_thread(threads, append, "a")
    in_thread(threads, append, "b")
    for thread in threads:
        thread.join()
    assert AuditEvent.objects.count() == 80
    assert verify() is None  # pending events verify by their digest

    sealers = threading.Barrier(2)
    counts: list[int] = []

    def sealer() -> None:
        sealers.wait()
        counts.append(seal())

    threads.clear()
    in_thread(threads, sealer)
    in_thread(threads, sealer)
    for thread in threads:
        thread.join()
    assert sorted(counts)[-1] > 0
    assert sum(counts) == 80  # each event sealed exactly once, by one of them
    assert sealed_seqs() == list(range(1, 81))
    assert verify() is None


@pytest.mark.django_db(transaction=True)
def test_an_open_transaction_holds_up_neither_other_appends_nor_the_sealer(threads) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite runs one write transaction at a time (IMMEDIATE), whatever the audit does")
    inside, release = threading.Event(), threading.Event()

    def slow_request() -> None:
        with transaction.atomic():
            record(1, who="slow")
            inside.set()
            assert release.wait(timeout=30)

    in_thread(threads, slow_request)
    assert inside.wait(timeout=30)
    try:
        with transaction.atomic():  # under the head-row lock this waited for the slow request
            record(2, who="quick")
        assert seal() == 2  # the sealer chains what is committed and does not wait either
    finally:
        release.set()
    threads[0].join()
    assert seal() == 1
    assert list(AuditEvent.objects.order_by("seq").values_list("extra__who", flat=True)) == ["quick", "quick", "slow"]
    assert verify() is None


@pytest.mark.django_db(transaction=True)
def test_the_workers_sealer_loop_seals_what_is_committed_and_stops(threads) -> None:
    stop = threading.Event()
    in_thread(threads, seal_every, stop, 0.05)
    with transaction.atomic():
        record(4)
    try:
        for _ in range(200):
            if AuditEvent.objects.filter(seq=None).count() == 0:
                break
            stop.wait(0.05)
    finally:
        stop.set()
    threads[0].join(timeout=30)
    assert sealed_seqs() == [1, 2, 3, 4]
    assert verify() is None
