"""The cost of a monitoring run (``piwarden audit monitor``) per 10,000 audit events.

    .venv/bin/python bench/monitor.py [--events 100000]          (SQLite in a fresh temporary data dir)
    DATABASE_URL=postgres://…/EMPTY_DB .venv/bin/python bench/monitor.py   (PostgreSQL: a new, empty database)

The log is filled as a busy site writes it, 100 events per minute from 09:00 in Beijing on a
Tuesday (the evening's reveals are out of hours): 20 staff members revealing 10 a minute between
them, a failed sign-in every 2 minutes, a gate refusal a minute, and the rest what a site writes
besides (submissions, consents).  Few alerts, as on a real site: raising one costs its own rows.
All of it is sealed before the timing (the sealer runs every second under ``piwarden serve``; its
cost is bench/audit.py's).  Then:

* first run: every event new (an install's first run, or a run after a long outage);
* idle run: nothing new but the first run's own alert events (what ``serve`` pays every
  PIWARDEN_ALERT_EVERY seconds on a quiet site);
* incremental run: 10,000 new events after the others (with the look-back of the longest window).

Wall time and this process's CPU time per 10,000 events (PostgreSQL's own CPU is not in it).
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchenv import configure

PER_MINUTE = 100
STAFF = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events in the log before the first run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="piwarden-bench-monitor-") as tmp:
        configure(Path(tmp))
        run(args.events)


def run(total: int) -> None:
    import django  # noqa: PLC0415  # only after configure()
    from django.core.management import call_command  # noqa: PLC0415

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("keys", "init", stdout=io.StringIO())

    from django.db import connection  # noqa: PLC0415

    from piwarden.audit.chain import seal  # noqa: PLC0415
    from piwarden.monitoring.actions import run_monitor  # noqa: PLC0415
    from piwarden.monitoring.models import Alert  # noqa: PLC0415

    print(f"backend: {connection.vendor}; load average before: {os.getloadavg()[0]:.2f}")
    write = writer()
    start = datetime.datetime(2026, 12, 1, 1, 0, tzinfo=datetime.UTC)  # Tuesday, 09:00 in Beijing
    fill(write, 0, total, start)
    seal()
    timed("first run", total, run_monitor)
    timed("idle run", 10_000, run_monitor, per=False)
    fill(write, total, 10_000, start)
    seal()
    timed("incremental run", 10_000, run_monitor)
    from django.db.models import Count  # noqa: PLC0415

    rules = Alert.objects.order_by().values_list("rule").annotate(n=Count("id"))
    print(f"alerts by rule: {dict(rules)}; load average after: {os.getloadavg()[0]:.2f}")


def writer() -> Callable[[int], None]:
    from django.contrib.auth.models import User  # noqa: PLC0415

    from piwarden.audit.log import EventType, record_event  # noqa: PLC0415

    staff = [User.objects.create(username=f"bench-{n}", is_staff=True) for n in range(STAFF)]

    def one(i: int) -> None:
        who = staff[(i * 7) % STAFF]
        kind = i % 200
        if kind < 20:
            record_event(EventType.PII_REVEALED, actor=who, purpose="respond_inquiry", fields=["name"], reason="x")
        elif kind == 20:
            someone = staff[(i // 200) % STAFF] if i % 3 else None  # mistypes, spread over the accounts
            record_event(EventType.STAFF_SIGN_IN_FAILED, actor=someone, purpose="security")
        elif kind < 23:
            record_event(EventType.PROCESSING_REFUSED, purpose="marketing", extra={"refusal": "no consent"})
        elif kind < 110:
            record_event(EventType.INQUIRY_SUBMITTED, actor_kind="visitor", fields=["name", "email"])
        else:
            record_event(EventType.CONSENT_GIVEN, actor_kind="visitor", purpose="respond_inquiry")

    return one


def fill(one: Callable[[int], None], first: int, count: int, start: datetime.datetime) -> None:
    import time_machine  # noqa: PLC0415  # a development dependency: the events need their own times
    from django.db import transaction  # noqa: PLC0415

    from piwarden.audit.log import batched  # noqa: PLC0415

    began = time.perf_counter()
    for block in range(first, first + count, PER_MINUTE):
        moment = start + datetime.timedelta(minutes=block // PER_MINUTE)
        with time_machine.travel(moment, tick=False), transaction.atomic(), batched():
            for i in range(block, min(block + PER_MINUTE, first + count)):
                one(i)
    print(f"filled {count:,} events in {time.perf_counter() - began:.1f} s")


def timed(label: str, events: int, action: Callable[[], Any], *, per: bool = True) -> None:
    began, cpu = time.perf_counter(), _cpu()
    done = action()
    wall, cpu = time.perf_counter() - began, _cpu() - cpu
    outcome = f"{done.examined:,} examined, {len(done.alerts)} alert(s)"
    if per:
        scale = 10_000 / events
        print(
            f"{label}: {events:,} events in {wall:.2f} s; per 10,000 events {wall * scale * 1000:.0f} ms wall, "
            f"{cpu * scale * 1000:.0f} ms CPU ({outcome})"
        )
    else:
        print(f"{label}: {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU ({outcome})")


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


if __name__ == "__main__":
    main()
