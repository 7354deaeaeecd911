"""The audit log's retention: cut at a signed checkpoint, then the events before the cut deleted.

The audit log is hash-chained, so only its oldest part can go, and only at a point that
``verify`` can start from: a signed checkpoint's last event (:mod:`piwarden.audit.cut`).  The
sweep (:func:`piwarden.retention.sweep.cut_audit_log`, after the swept rules):

1. deletes what is left at or below the newest cut (a run killed mid-way, or events a legal hold
   kept that it no longer does);
2. picks the next cut point (:func:`next_cut`): the newest checkpoint whose events are all past
   the retention of every category the events hold (:func:`cutoff`), and before the first event a
   legal hold in force covers (a hold on one of those categories keeps the whole log, a hold on a
   person keeps the log from their first event on);
3. checks the events it would delete (``chain.verify_upto``: a log that does not verify is
   evidence, and is not cut), writes the signed cut with its ``audit.cut`` event, and deletes
   the events at or below it through :func:`~piwarden.retention.sweep.run_batches`, each batch a
   durable transaction (:func:`piwarden.retention.actions.cut_batch`).

A crash leaves the cut made and a part of its events deleted, which ``verify`` does not read:
the next run finishes it (step 1) and makes no second cut for the same point.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db.models import Max, Min, QuerySet

from piwarden.audit import cut as audit_cut
from piwarden.audit.models import AuditCheckpoint, AuditEvent
from piwarden.policy.declaration import Category, load_declaration
from piwarden.retention import actions
from piwarden.retention.models import LegalHold
from piwarden.retention.rules import cutoff as category_cutoff
from piwarden.retention.rules import retention_days

_IN_LOG = "audit.AuditEvent."
CUT_BATCH = 2000  # events per deletion transaction (a plain DELETE by primary key)


def log_categories() -> list[Category]:
    """The declared categories whose fields are audit events' columns: a cut removes all of them."""
    return [c for c in load_declaration().categories if any(str(f).startswith(_IN_LOG) for f in c.fields)]


def cutoff(now: datetime.datetime) -> datetime.datetime:
    """Events at or before this are past the retention of every category they hold (the longest decides)."""
    return min(category_cutoff(c, now) for c in log_categories())


def days() -> int:
    return max(retention_days(c) for c in log_categories())


@dataclass
class NextCut:
    """Where the log is cut, where it will be cut next, and what holds that back (the plan)."""

    done: int  # the newest cut's seq (0: never cut)
    left: int  # events at or below it not deleted yet (a run interrupted, or kept by a hold)
    cutoff: datetime.datetime
    checkpoint: tuple[int, int] | None = None  # (first_seq, last_seq) of the checkpoint to cut at
    events: int = 0  # sealed events it deletes (from the last cut to it)
    unheld: int | None = None  # where the cut would be without the holds (when they hold it back)
    held: list[str] = field(default_factory=list)  # what holds it back, in words


def _newest_checkpoint(after: int, upto: int) -> tuple[int, int] | None:
    found = (
        AuditCheckpoint.objects.filter(last_seq__gt=after, last_seq__lte=upto)
        .order_by("-last_seq")
        .values_list("first_seq", "last_seq")
        .first()
    )
    return None if found is None else (int(found[0]), int(found[1]))


def next_cut(now: datetime.datetime) -> NextCut:
    done = audit_cut.newest()
    plan = NextCut(done, AuditEvent.objects.filter(seq__lte=done).count() if done else 0, cutoff(now))
    # The first sealed event after the cut that is not past its retention: the cut stays before it.
    young = (
        AuditEvent.objects.filter(seq__gt=done, occurred_at__gt=plan.cutoff)
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    bound = young - 1 if young is not None else int(AuditEvent.objects.aggregate(top=Max("seq"))["top"] or 0)
    limit = bound
    holds = {h.pk: h for h in LegalHold.objects.in_force(now).select_related("person")}
    for pk in held_in_log(now):
        limit = done
        hold = holds[pk]
        plan.held.append(f"hold {pk} on the category {hold.category} until {hold.ends_on}: the whole log kept")
    persons = actions.held_persons(now)
    if persons:
        named = AuditEvent.objects.filter(person__in=persons, seq__gt=done)
        first = named.aggregate(first=Min("seq"))["first"]
        if first is not None and first - 1 < limit:
            limit = first - 1
            who = named.filter(seq=first).values_list("person_id", flat=True).first()
            for pk, hold in holds.items():
                if hold.person_id is not None and hold.person_id == who:
                    plan.held.append(
                        f"hold {pk} on person {hold.person.reference if hold.person else ''} until {hold.ends_on}: "
                        f"their first event (seq {first}) keeps the cut before it"
                    )
    plan.checkpoint = _newest_checkpoint(done, limit)
    if plan.checkpoint is not None:
        plan.events = plan.checkpoint[1] - done
    unheld = _newest_checkpoint(done, bound)
    if unheld is not None and unheld != plan.checkpoint:
        plan.unheld = unheld[1]
    else:
        plan.held = []  # the holds do not move the cut
    return plan


@dataclass
class Outcome:
    """What the sweep did with the audit log."""

    cut_seq: int = 0  # the newest cut after the run (0: none)
    made: bool = False  # a new cut was made in this run
    deleted: int = 0  # events deleted in this run
    kept: int = 0  # events at or below the cut kept by legal holds
    held: list[str] = field(default_factory=list)
    refused: str = ""  # why no cut was made although one was due


def below(cut_seq: int, now: datetime.datetime) -> QuerySet[AuditEvent]:
    """The events at or below the cut that no legal hold keeps (what the sweep deletes)."""
    rows = AuditEvent.objects.filter(seq__lte=cut_seq)
    persons = actions.held_persons(now)
    return rows.exclude(person__in=persons) if persons else rows


def held_in_log(now: datetime.datetime) -> list[int]:
    """The holds in force on a category the audit events hold: they keep the whole log."""
    held = actions.held_categories(now)
    return sorted({pk for c in log_categories() for pk in held.get(c.id, [])})
