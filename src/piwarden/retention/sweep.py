"""The retention sweep: every declared category's retention applied, in batches that survive a crash.

Design.  The housekeeping's jobs (:mod:`piwarden.site.housekeeping`: what is not rows of a table,
the outbox's files and the rights archives) run first, each in its transaction.
Then each :class:`~piwarden.retention.rules.Swept` rule: the keys of its rows past their retention
(and held by no legal hold) are read outside any transaction, in key order, one batch at a time,
and each batch is removed by :func:`piwarden.retention.actions.sweep_batch` in a durable
transaction of its own, with its ``retention.batch`` audit event and the erasure of the people
nothing keeps any more.  Nothing is remembered between batches but the last key read: a crash
loses at most the batch in flight, which rolled back whole, and the next run's query finds
exactly what is left.  So the sweep is idempotent, resumable and never repeats an audit event;
memory stays at one batch of keys whatever the table's size (streamed).

Clock guard.  Before anything is removed the clock is compared with the last reading the sweep
trusted (:class:`~piwarden.retention.models.SweepClock`; on the first run, the newest audit
event): ahead by more than ``PIWARDEN_RETENTION_CLOCK_SKEW`` hours, the sweep removes nothing,
raises a monitoring alert and :class:`ClockAhead`.  An operator who knows the clock is right
(the site was stopped that long) runs ``piwarden retention sweep --clock-confirmed`` (audited).

:func:`run_batches` is the loop itself, for any job that removes rows in resumable batches (the
site's cessation erases everyone through it: :func:`erase_people`).
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection
from django.db.models import Max, QuerySet
from django.utils import timezone

from piwarden.audit import cut as audit_cut
from piwarden.audit.chain import verify_upto
from piwarden.audit.models import AuditEvent
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.retention import actions
from piwarden.retention import cut as log_cut
from piwarden.retention.models import SweepClock
from piwarden.retention.rules import SWEPT, cutoff
from piwarden.security.actions import destroy_emptied_month_keys
from piwarden.site.actions import sweep_retention
from piwarden.site.housekeeping import Sweep as Jobs
from piwarden.vault.keys import VaultUnavailable

logger = logging.getLogger("piwarden.retention")

BATCH = 500
# A batch that erases people runs every category's eraser, the shredding, the audit events and the
# ledger once for all of them (set-based: ``people.actions.shred_people``), ~1-3 ms a person: on
# PostgreSQL, whose row locks the site's POSTs do not wait for, 200 a transaction; on SQLite, whose
# one write lock they wait for (from BEGIN IMMEDIATE), 20, so that a batch holds it ~0.1 s under
# load (bench/retention.py: 50 a batch put the POST's p99 at 2.9x of its p99 without the sweep;
# docs/performance.md).
PEOPLE_BATCH = 200
SQLITE_PEOPLE_BATCH = 20
# On SQLite, after each batch the sweep waits as long again as the batch took: the site's writers
# get the lock at least half of the time (docs/performance.md, the retention sweep).
SQLITE_YIELD = 1.0

# (label, done, total): called after each batch.
Progress = Callable[[str, int, int], None]


class ClockAhead(Exception):
    """The clock is ahead of the last trusted reading by more than the bound: nothing was removed."""

    def __init__(self, now: datetime.datetime, reference: datetime.datetime, bound: datetime.timedelta) -> None:
        self.now, self.reference, self.bound = now, reference, bound
        hours = (now - reference).total_seconds() / 3600
        super().__init__(
            f"The clock reads {now:%Y-%m-%d %H:%M} UTC, {hours:.0f} hours after the last reading the retention sweep "
            f"trusted ({reference:%Y-%m-%d %H:%M} UTC); more than PIWARDEN_RETENTION_CLOCK_SKEW "
            f"({bound.total_seconds() / 3600:.0f} hours) allows. Nothing was deleted and the security auditors were "
            "alerted. Check the system clock (NTP); if it is right (the site was stopped that long), run "
            "`piwarden retention sweep --clock-confirmed`."
        )


def clock_reference() -> datetime.datetime | None:
    """The last clock reading the sweep trusted; before the first sweep, the newest audit event."""
    trusted = SweepClock.objects.filter(pk=1).values_list("trusted_at", flat=True).first()
    if trusted is not None:
        return trusted
    newest: datetime.datetime | None = AuditEvent.objects.aggregate(newest=Max("occurred_at"))["newest"]
    return newest


def guard_clock(now: datetime.datetime, *, confirmed: bool = False) -> None:
    """Refuse (alert, :class:`ClockAhead`) when ``now`` is too far ahead; else trust ``now``."""
    reference = clock_reference()
    bound = datetime.timedelta(hours=settings.PIWARDEN_RETENTION_CLOCK_SKEW)
    if confirmed:
        actions.confirm_clock(now=now, reference=reference)
        return
    if reference is not None and now - reference > bound:
        actions.alert_clock_ahead(now=now, reference=reference)
        raise ClockAhead(now, reference, bound)
    actions.trust_clock(max(now, reference) if reference is not None else now)


# --- the loop ------------------------------------------------------------------------------------


def run_batches(
    keys: QuerySet[Any],
    act: Callable[[Sequence[Any]], int],
    *,
    label: str,
    batch_size: int = BATCH,
    progress: Progress | None = None,
    yield_ratio: float | None = None,
) -> int:
    """Hand the primary keys of ``keys`` to ``act`` in batches, in key order; return what ``act`` counted.

    ``act`` is a durable write path that re-checks each key under its transaction, so a key that
    changed meanwhile is left alone; it must leave no key it acted on in ``keys`` (deleted, erased,
    anonymised), so that a run after a crash finds only what was not done.  The keys are read
    one batch at a time after the last one read, never all at once.  After each batch the loop waits
    ``yield_ratio`` times as long as the batch took (default: :data:`SQLITE_YIELD` on SQLite, none
    elsewhere), so that the site's own writes are not starved.
    """
    if yield_ratio is None:
        yield_ratio = SQLITE_YIELD if connection.vendor == "sqlite" else 0.0
    total = keys.count()
    done = counted = 0
    last: Any = None
    if progress is not None:
        progress(label, 0, total)
    while True:
        page = keys.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        batch = list(page.values_list("pk", flat=True)[:batch_size])
        if not batch:
            return counted
        began = time.monotonic()
        counted += act(batch)
        if yield_ratio:
            time.sleep((time.monotonic() - began) * yield_ratio)
        last = batch[-1]
        done = min(done + len(batch), total) if total else done + len(batch)
        if progress is not None:
            progress(label, done, max(total, done))


@dataclass
class Outcome:
    """What the sweep did with one rule's rows."""

    category: str
    model: str
    action: str = "deleted"
    rows: int = 0
    erased: int = 0
    held_rows: int = 0  # past their retention, kept by a legal hold
    holds: list[int] = field(default_factory=list)  # the holds that kept them (category holds)
    held_persons: int = 0  # people whose hold kept rows


@dataclass
class Report:
    run: str
    outcomes: list[Outcome]
    cut: log_cut.Outcome | None = None  # the audit log's (access_records, access_reasons)


def run_retention(
    now: datetime.datetime | None = None,
    *,
    batch_size: int | None = None,
    progress: Progress | None = None,
    clock_confirmed: bool = False,
) -> tuple[Jobs, Report]:
    """The whole retention once: the clock guard (raises :class:`ClockAhead`), the housekeeping's
    jobs, every swept rule (:func:`sweep`), then the keys of the security events' months left empty.
    ``piwarden retention sweep`` and the housekeeping that ``piwarden serve`` runs hourly both call
    this."""
    now = now or timezone.now()
    guard_clock(now, confirmed=clock_confirmed)
    jobs = sweep_retention(now)
    report = sweep(now, batch_size=batch_size, progress=progress)
    destroy_emptied_month_keys(cutoff(load_declaration().category("security_events"), now))
    return jobs, report


def sweep(
    now: datetime.datetime | None = None,
    *,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> Report:
    """Cut the audit log, then apply every swept rule once (the clock guarded by the caller:
    :func:`run_retention`); the cut first, so that a person whose last links were audit events
    goes in the same run."""
    now = now or timezone.now()
    run = uuid.uuid4().hex[:12]
    cut = cut_audit_log(now, batch_size=batch_size, progress=progress)
    held = actions.held_categories(now)
    persons = actions.held_persons(now)
    outcomes = []
    for index, rule in enumerate(SWEPT):
        anonymise = actions.anonymises(rule)
        outcome = Outcome(rule.category, rule.name, "anonymised" if anonymise else "deleted")
        outcomes.append(outcome)
        rows = actions.expired(rule, now)
        if anonymise:
            rows = rows.filter(actions.not_anonymised(rule.model))
        holds = sorted({h for c in rule.holding for h in held.get(c, [])})
        if holds:
            outcome.held_rows, outcome.holds = rows.count(), holds
            continue
        if rule.person is not None and persons:
            kept = rows.filter(**{f"{rule.person}__in": persons})
            outcome.held_rows = kept.count()
            outcome.held_persons = len(set(kept.values_list(rule.person, flat=True)))
            rows = rows.exclude(**{f"{rule.person}__in": persons})

        def act(keys: Sequence[Any], index: int = index, outcome: Outcome = outcome) -> int:
            batch = actions.sweep_batch(index, keys, now=now, run=run)
            outcome.erased += batch.erased
            return batch.rows

        people = SQLITE_PEOPLE_BATCH if connection.vendor == "sqlite" else PEOPLE_BATCH
        size = batch_size or (people if rule.person is not None and rule.erases else BATCH)
        outcome.rows = run_batches(rows, act, label=rule.category, batch_size=size, progress=progress)
    return Report(run, outcomes, cut)


# --- the audit log: cut at a signed checkpoint (piwarden.retention.cut) -------------------------


def cut_audit_log(
    now: datetime.datetime, *, batch_size: int | None = None, progress: Progress | None = None
) -> log_cut.Outcome:
    """Finish the deletion of the newest cut, make the next cut that is due (the events it
    removes checked first: a log that does not verify is evidence, and is not cut), and delete the
    events at or below it in batches."""
    outcome = log_cut.Outcome(cut_seq=audit_cut.newest())
    _delete_cut(outcome, now, batch_size, progress)
    plan = log_cut.next_cut(now)
    outcome.held = plan.held
    if plan.checkpoint is not None:
        first_seq, last_seq = plan.checkpoint
        try:
            broken = verify_upto(last_seq)
        except VaultUnavailable as exc:  # no public key: no verdict, no cut
            outcome.refused = str(exc)
            logger.error("audit log not cut at seq %s: %s", last_seq, exc)
            return outcome
        if broken is not None:
            outcome.refused = f"the log does not verify up to the cut point ({broken})"
            logger.error("audit log not cut at seq %s: %s", last_seq, broken)
            return outcome
        extra = {
            "events": plan.events,
            "cutoff": plan.cutoff.isoformat(),
            "retention_days": log_cut.days(),
            "categories": [c.id for c in log_cut.log_categories()],
        }
        try:
            outcome.made = audit_cut.make_cut(first_seq, now=now, extra=extra) is not None
        except IntegrityError:  # another sweep made the same cut meanwhile: it is made
            outcome.made = False
        except (audit_cut.CutRefused, VaultUnavailable) as exc:
            outcome.refused = str(exc)
            logger.error("audit log not cut at seq %s: %s", last_seq, exc)
            return outcome
        outcome.cut_seq = audit_cut.newest()
        _delete_cut(outcome, now, batch_size, progress)
    if outcome.cut_seq:
        outcome.kept = AuditEvent.objects.filter(seq__lte=outcome.cut_seq).count()
    return outcome


def _delete_cut(
    outcome: log_cut.Outcome, now: datetime.datetime, batch_size: int | None, progress: Progress | None
) -> None:
    if outcome.cut_seq == 0 or log_cut.held_in_log(now):
        return

    categories = [c.id for c in log_cut.log_categories()]

    def act(keys: Sequence[Any]) -> int:
        return actions.cut_batch(keys, now=now, categories=categories)

    rows = log_cut.below(outcome.cut_seq, now)
    size = batch_size or log_cut.CUT_BATCH
    outcome.deleted += run_batches(rows, act, label="access_records (audit log)", batch_size=size, progress=progress)


# --- for the cessation: everyone erased, in the same batches -------------------------------------


def erase_people(
    people: QuerySet[Person],
    *,
    reason: str,
    batch_size: int = PEOPLE_BATCH,
    progress: Progress | None = None,
) -> int:
    """Erase every person of ``people`` not erased yet (every category's eraser, then crypto-shredding),
    in resumable batches, one ``retention.batch`` event per batch and ``person.shredded`` per person.
    Legal holds in force keep their people.  Returns how many were erased."""
    run = uuid.uuid4().hex[:12]
    pending = people.filter(erased_at__isnull=True)

    def act(keys: Sequence[Any]) -> int:
        return actions.erase_people_batch(keys, reason=reason, run=run)

    return run_batches(pending, act, label="people", batch_size=batch_size, progress=progress)
