"""``verify`` checks sealed events a chunk (seq range) at a time, in worker processes (SQLite) or
over one connection per worker (PostgreSQL), then joins the chunks in order.  Whatever the
split, it names the same first event as the walk over one chunk, and the right one.

30 events are sealed and checked in chunks of 7 (1-7, 8-14, 15-21, 22-28, 29-30); a tamper
lands in the first chunk, on a chunk's first event (only the join can see a link there), in a
middle chunk and in the last one.  Each case runs three ways: two workers (their own
connections, so the data is committed: ``transaction=True``), in this process chunk by chunk,
and as one chunk.  Pending (not yet sealed) events come after, and are checked by digest.
Every case runs again with checkpoints over the first 28 events (``log``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

import pytest
from django.db import connection, transaction
from django.db.models import F

from piwarden.audit import chain
from piwarden.audit.chain import seal, verify
from piwarden.audit.log import EventType, batched, record_event
from piwarden.audit.models import AuditChainHead, AuditEvent
from piwarden.audit.scan import GENESIS, Break

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS, CHUNK, PENDING = 30, 7, 5
# Where a tamper lands: the first chunk, a chunk's first event, a middle chunk, the last chunk.
AT = {"first chunk": 3, "first event of a chunk": 8, "middle chunk": 17, "last chunk": 29}


def record(n: int, offset: int = 0) -> None:
    for i in range(n):
        with transaction.atomic(), batched():
            extra = {"n": offset + i, "note": "ok"} if i % 2 else {}
            record_event(EventType.STAFF_SIGN_IN_FAILED, purpose="security", reason="", extra=extra)


@pytest.fixture(params=["events", "checkpoints"])
def log(request: pytest.FixtureRequest) -> dict[int, int]:
    """``EVENTS`` sealed events and ``PENDING`` after them; seq -> id of the sealed ones.  Run
    twice: with the sealed events checked one by one, and with checkpoints over the first four
    chunks (1-7 … 22-28: ``verify`` checks each run as one hash, and the events after the last
    one by one)."""
    record(EVENTS)
    assert seal() == EVENTS
    if request.param == "checkpoints":
        assert chain.checkpoint(span=CHUNK) == EVENTS // CHUNK
    record(PENDING, offset=EVENTS)
    by_seq = dict(AuditEvent.objects.exclude(seq=None).values_list("seq", "id"))
    assert sorted(by_seq) == list(range(1, EVENTS + 1))
    assert every_way() is None
    return by_seq


def every_way() -> Break | None:
    """The verdict, the same whether two workers, this process or one chunk checks the log."""
    assert threading.active_count() == 1  # else the SQLite workers are not forked (see chain._chunks)
    apart = verify(chunk=CHUNK, workers=2)
    here = verify(chunk=CHUNK, workers=1)
    whole = verify(chunk=10 * EVENTS, workers=1)
    assert apart == here == whole
    return apart


def shift(from_seq: int) -> None:
    """Move the events from ``from_seq`` on one seq up (in two steps: seq is unique)."""
    AuditEvent.objects.filter(seq__gte=from_seq).update(seq=F("seq") + 1000)
    AuditEvent.objects.filter(seq__gte=1000).update(seq=F("seq") - 999)


def hash_of(pk: int) -> str:
    """The hash the sealer would give the event as it is stored now."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {chain._render(connection.vendor, with_link=True)} FROM {table} WHERE id = %s", [pk])  # noqa: S608  # names from the model
        return hashlib.sha256(cursor.fetchone()[0].encode()).hexdigest()


def change_content(by_seq: dict[int, int], s: int) -> tuple[int, int]:
    AuditEvent.objects.filter(pk=by_seq[s]).update(reason="nothing happened")
    return by_seq[s], s


def change_prev_hash(by_seq: dict[int, int], s: int) -> tuple[int, int]:
    AuditEvent.objects.filter(pk=by_seq[s]).update(prev_hash="f" * 64)
    return by_seq[s], s


def swap(by_seq: dict[int, int], s: int) -> tuple[int, int]:
    """Events s and s+1 trade places: at seq s the walk meets an event linked to s."""
    AuditEvent.objects.filter(pk=by_seq[s]).update(seq=-1)
    AuditEvent.objects.filter(pk=by_seq[s + 1]).update(seq=s)
    AuditEvent.objects.filter(pk=by_seq[s]).update(seq=s + 1)
    return by_seq[s + 1], s


def delete(by_seq: dict[int, int], s: int) -> tuple[int, int]:
    AuditEvent.objects.filter(pk=by_seq[s]).delete()
    return by_seq[s + 1], s + 1


def insert(by_seq: dict[int, int], s: int) -> tuple[int, int]:
    """A forged event at seq s, linked to s-1 and with a hash that follows from its columns: the
    walk accepts it, and meets the event it displaced, whose prev_hash is not the forged hash."""
    shift(s)
    with transaction.atomic():
        record_event(EventType.STAFF_SIGNED_IN, purpose="security", reason="forged")
    forged = AuditEvent.objects.get(reason="forged")
    prev = AuditEvent.objects.get(pk=by_seq[s - 1]).hash if s > 1 else GENESIS
    AuditEvent.objects.filter(pk=forged.pk).update(seq=s, prev_hash=prev)
    AuditEvent.objects.filter(pk=forged.pk).update(hash=hash_of(forged.pk))
    return by_seq[s], s + 1


TAMPERS: dict[str, Callable[[dict[int, int], int], tuple[int, int]]] = {
    "content": change_content,
    "prev_hash": change_prev_hash,
    "order": swap,
    "deleted": delete,
    "inserted": insert,
}


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize("where", list(AT))
@pytest.mark.parametrize("tamper", list(TAMPERS))
@pytest.mark.usefixtures("triggers_dropped")
def test_a_tampered_sealed_event_is_named_in_any_chunk(log: dict[int, int], tamper: str, where: str) -> None:
    event_id, seq = TAMPERS[tamper](log, AT[where])
    broken = every_way()
    assert broken is not None
    assert (broken.event_id, broken.seq) == (event_id, seq), broken


@pytest.mark.duty("SEC-02")
@pytest.mark.usefixtures("triggers_dropped")
def test_the_last_event_deleted_is_seen_against_the_head(log: dict[int, int]) -> None:
    AuditEvent.objects.filter(pk=log[EVENTS]).delete()
    broken = every_way()
    assert broken is not None
    assert (broken.event_id, broken.seq) == (log[EVENTS - 1], EVENTS - 1)
    assert "events deleted" in broken.why


@pytest.mark.duty("SEC-02")
@pytest.mark.usefixtures("triggers_dropped")
def test_the_first_break_is_named_when_several_chunks_break(log: dict[int, int]) -> None:
    change_content(log, 26)
    change_content(log, 12)
    change_prev_hash(log, 20)
    broken = every_way()
    assert broken is not None
    assert (broken.event_id, broken.seq) == (log[12], 12)


def pending_ids() -> list[int]:
    return list(AuditEvent.objects.filter(seq=None).order_by("id").values_list("id", flat=True))


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize("tamper", ["content", "prev_hash", "hash", "inserted"])
@pytest.mark.usefixtures("triggers_dropped")
def test_a_tampered_pending_event_is_named(log: dict[int, int], tamper: str) -> None:
    target = pending_ids()[2]
    if tamper == "content":
        AuditEvent.objects.filter(pk=target).update(purpose="marketing")
    elif tamper in ("prev_hash", "hash"):
        AuditEvent.objects.filter(pk=target).update(**{tamper: "0" * 64})
    else:  # an event written past record_event, with a digest that does not follow from it
        with transaction.atomic():
            record_event(EventType.STAFF_SIGNED_IN, purpose="security", reason="forged")
        target = AuditEvent.objects.get(reason="forged").pk
        AuditEvent.objects.filter(pk=target).update(digest="0" * 64)
    broken = every_way()
    assert broken is not None
    assert (broken.event_id, broken.seq) == (target, None), broken


@pytest.mark.usefixtures("triggers_dropped")
def test_a_pending_event_stored_in_another_json_spelling_still_verifies(log: dict[int, int]) -> None:
    """The fast path hashes the stored text; the same value spelled otherwise is decided through
    the ORM, as before (its meaning did not change)."""
    target = AuditEvent.objects.filter(seq=None).exclude(extra={}).order_by("id").values_list("id", flat=True)[0]
    table, extra = connection.ops.quote_name(AuditEvent._meta.db_table), connection.ops.quote_name("extra")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {extra} = %s WHERE id = %s", ['{"note": "ok",  "n": 31}', target])  # noqa: S608
    assert every_way() is None
    AuditEvent.objects.filter(pk=target).update(extra={"note": "ok", "n": 32})
    broken = every_way()
    assert broken is not None
    assert (broken.event_id, broken.seq) == (target, None)


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize("where", ["first chunk", "middle chunk"])
@pytest.mark.usefixtures("triggers_dropped")
def test_a_prev_hash_that_only_starts_with_the_right_hash_is_named_even_with_the_chain_rehashed(
    log: dict[int, int], where: str
) -> None:
    """Someone who can write the database rehashes the chain after a prev_hash that starts with
    the hash before it (then a separator and more): every hash follows from its columns, the
    head included, yet the prev_hash is not the hash before it."""
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL enforces varchar(64): such a prev_hash cannot be stored")
    s = AT[where]
    before = AuditEvent.objects.get(seq=s - 1).hash
    AuditEvent.objects.filter(seq=s).update(prev_hash=f"{before}\x1fforged")
    for seq in range(s, EVENTS + 1):
        pk = log[seq]
        if seq > s:
            AuditEvent.objects.filter(pk=pk).update(prev_hash=AuditEvent.objects.get(seq=seq - 1).hash)
        AuditEvent.objects.filter(pk=pk).update(hash=hash_of(pk))
    AuditChainHead.objects.filter(pk=1).update(hash=AuditEvent.objects.get(seq=EVENTS).hash)
    broken = every_way()
    assert broken is not None
    assert (broken.event_id, broken.seq) == (log[s], s)
    assert "prev_hash" in broken.why
