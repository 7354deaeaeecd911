"""The audit log's costs: append (µs per event in the request), seal and verify (events per second).

    .venv/bin/python bench/audit.py [--events 1000000]          (SQLite in a fresh temporary data dir)
    DATABASE_URL=postgres://…/EMPTY_DB .venv/bin/python bench/audit.py   (PostgreSQL: a new, empty database)

* append: ``record_event`` inside one transaction, one event per call (as a request writes them),
  then the same inside ``batched()`` (3 events, one INSERT, as a consultation writes them): CPU
  time per event, and wall time per event and per statement (the round trip to the database);
* seal: ``seal()`` over every pending event;
* verify: ``verify()`` over the whole log with the last 1% left unsealed, then all sealed (the
  default: one worker per core), then all sealed in this process alone (``workers=1``).
  Targets (issue 6): append <= 50 µs per event in a batch of 3; verify >= 1,000,000 events/s.

The events are generated (no request around them): the content of the three events a consultation
writes, with a person, an actor and a reason on every tenth.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchenv import configure

APPEND_ROUNDS = 5
APPEND_TARGET_US = 50  # issue 6: per event, in a request's batch of 3 on PostgreSQL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log for seal and verify")
    parser.add_argument("--append", type=int, default=20_000, help="events timed one per call, and per round batched")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="piwarden-bench-audit-") as tmp:
        configure(Path(tmp))
        run(args.events, args.append)


def run(total: int, append_n: int) -> None:
    import django  # noqa: PLC0415  # only after configure()
    from django.core.management import call_command  # noqa: PLC0415

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("keys", "init", stdout=io.StringIO())

    from django.db import connection  # noqa: PLC0415

    print(f"backend: {connection.vendor}; load average before: {os.getloadavg()[0]:.2f}")
    one = scene()
    append(one, append_n)
    fill(one, total)
    seal_and_verify(total)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def scene() -> Callable[[int], None]:
    """A function recording the i-th generated event (the log emptied first)."""
    from django.contrib.auth.models import User  # noqa: PLC0415
    from django.db import transaction  # noqa: PLC0415

    from piwarden.audit.log import EventType, record_event  # noqa: PLC0415
    from piwarden.audit.models import AuditChainHead, AuditEvent  # noqa: PLC0415
    from piwarden.people.actions import find_or_create_person  # noqa: PLC0415

    AuditEvent.objects.all().delete()
    AuditChainHead.objects.all().delete()
    alice = User.objects.create(username=f"bench-{time.time_ns()}")
    with transaction.atomic():
        person = find_or_create_person(email="bench@example.com")

    def one(i: int) -> None:
        if i % 3 == 0:
            record_event(EventType.PERSON_CREATED, actor_kind="visitor", person=person, purpose="respond_inquiry")
        elif i % 3 == 1:
            record_event(
                EventType.CONSENT_GIVEN,
                actor_kind="visitor",
                person=person,
                purpose="respond_inquiry",
                extra={"notice": "2026-12-01", "separate": False},
            )
        elif i % 10 == 2:
            record_event(
                EventType.PII_REVEALED,
                actor=alice,
                person=person,
                purpose="respond_inquiry",
                fields=["name", "email"],
                reason="Calling back about the quote",
            )
        else:
            record_event(EventType.INQUIRY_SUBMITTED, actor_kind="visitor", person=person, fields=["name", "email"])

    return one


def append(one: Callable[[int], None], n: int) -> None:
    from django.db import transaction  # noqa: PLC0415

    from piwarden.audit.log import batched  # noqa: PLC0415

    # One event per call, in one transaction (the request's).
    with transaction.atomic():
        start, wall = time.process_time(), time.perf_counter()
        for i in range(n):
            one(i)
        single, single_wall = (time.process_time() - start) / n, (time.perf_counter() - wall) / n
    # Batched: three events per block (a consultation's), one INSERT each: the figure, in rounds.
    rounds = []
    for _ in range(APPEND_ROUNDS):
        with transaction.atomic():
            start, wall, usage = time.process_time(), time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            for i in range(0, n, 3):
                with batched():
                    one(i)
                    one(i + 1)
                    one(i + 2)
            end = resource.getrusage(resource.RUSAGE_SELF)
            events = len(range(0, n, 3)) * 3
            rounds.append(
                (
                    (time.process_time() - start) / events,
                    (time.perf_counter() - wall) / events,
                    (end.ru_stime - usage.ru_stime) / events,
                )
            )
    three, three_wall, three_sys = sorted(rounds)[len(rounds) // 2]
    statement_alone(one)
    print(f"append, one INSERT per event:          {single * 1e6:6.1f} µs/event CPU, {single_wall * 1e6:6.1f} wall")
    print(
        f"append, batched() 3 events per INSERT: {three * 1e6:6.1f} µs/event CPU, {three_wall * 1e6:6.1f} wall "
        f"({three * 3e6:.0f} µs CPU, {three_wall * 3e6:.0f} µs wall per statement)"
    )
    verdict = "met" if three * 1e6 <= APPEND_TARGET_US else "NOT met"
    print(
        f"APPEND IN A REQUEST (record_event in batched(), 3 events, building them included): "
        f"{three * 1e6:.1f} µs CPU per event (median of {APPEND_ROUNDS} rounds of {events:,} events: "
        f"{', '.join(f'{r[0] * 1e6:.1f}' for r in rounds)}; of it in the kernel {three_sys * 1e6:.1f}); "
        f"target <= {APPEND_TARGET_US} µs: {verdict} (load average {os.getloadavg()[0]:.2f})"
    )


def statement_alone(one: Callable[[int], None], n: int = 2000) -> None:
    """A batch of 3 events' INSERT alone, as ``record_event`` sends it and through Django's cursor
    (how it went before on PostgreSQL: client-side binding), interleaved, rolled back."""
    from django.db import DEFAULT_DB_ALIAS, connections, transaction  # noqa: PLC0415

    from piwarden.audit import log  # noqa: PLC0415

    rows: list[tuple[object, ...]] = []
    token = log._buffer.set(rows)
    with transaction.atomic():
        for i in range(3):
            one(i)
    log._buffer.reset(token)
    connection = connections[DEFAULT_DB_ALIAS]
    sqlite = connection.vendor == "sqlite"
    results: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(3):
        for through_django in (False, True):
            sql = log._insert_sql(connection, 1 if sqlite else 3, driver=not through_django)
            params = rows if sqlite else [v for row in rows for v in row]
            with transaction.atomic():
                start = time.process_time()
                for _ in range(n):
                    log._send(connection, sql, params, many=sqlite, watched=through_django)
                results[through_django].append((time.process_time() - start) / n)
                transaction.set_rollback(True)
    sent, django = (sorted(results[k])[1] for k in (False, True))
    print(
        f"append, the INSERT of 3 events alone:   {sent * 1e6:6.1f} µs CPU per statement as sent, "
        f"{django * 1e6:6.1f} through Django's cursor (medians of 3 rounds)"
    )


def fill(one: Callable[[int], None], total: int) -> None:
    from django.db import transaction  # noqa: PLC0415

    from piwarden.audit.log import batched  # noqa: PLC0415
    from piwarden.audit.models import AuditEvent  # noqa: PLC0415

    made = AuditEvent.objects.count()
    start = time.perf_counter()
    while made < total:
        with transaction.atomic(), batched():
            for i in range(min(1000, total - made)):
                one(made + i)
        made = min(total, made + 1000)
    print(f"filled to {total:,} events in {time.perf_counter() - start:.1f} s")


def seal_and_verify(total: int) -> None:
    from piwarden.audit.chain import checkpoint, seal, verify  # noqa: PLC0415

    holdback = total // 100
    start = time.perf_counter()
    sealed = seal(limit=total - holdback)
    elapsed = time.perf_counter() - start
    print(f"seal:   {sealed:,} events in {elapsed:.1f} s = {sealed / elapsed:,.0f} events/s")
    start = time.perf_counter()
    taken = checkpoint(most=None)
    print(f"checkpoints: {taken:,} taken in {time.perf_counter() - start:.1f} s (each after checking its run)")
    for label, workers in (("99% sealed, 1% pending", None), ("all sealed", None), ("all sealed, workers=1", 1)):
        if label == "all sealed":
            seal()
            checkpoint(most=None)
        start, cpu = time.perf_counter(), _cpu()
        broken = verify(workers=workers)
        elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
        assert broken is None, broken
        print(
            f"verify ({label}): {total:,} events in {elapsed:.2f} s = {total / elapsed:,.0f} events/s; "
            f"{cpu / total * 1e6:.2f} µs CPU/event here and in workers (load average {os.getloadavg()[0]:.2f})"
        )


def _cpu() -> float:
    """CPU seconds of this process and of its ended children (SQLite's verify workers); the
    database server's (PostgreSQL's hashing) is not in it."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
