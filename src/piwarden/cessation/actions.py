"""Write paths of the site's cessation (policy §三(二) para 2; PIPL 47(1)(2); duty RET-07).

Each step is one named, audited action:

* :func:`announce`: the date and the reason, in one transaction with a notice row for everyone we
  can reach (:mod:`piwarden.people.contacts`): the notices are the outbox, committed with the
  announcement, and sent afterwards (:mod:`piwarden.cessation.mail`), each exactly once
  (:mod:`piwarden.people.notices`).
* :func:`withdraw`: before the date, with a reason; the notices not sent yet are dropped.
* :func:`collect_notices`: people who became reachable after the announcement (a rights request
  confirmed since) get their notice row too; run by every periodic round.
* :func:`begin_execution`, :func:`erase_batch`, :func:`finish_execution`: on the date, every
  person is erased as an erasure request erases them (every category's eraser of
  :mod:`piwarden.people.registry`, then the crypto-shredding), a batch per transaction with one
  audit event per batch and the ``person.shredded`` event per person.  A crash loses at most the
  batch in progress, which rolls back and is done again: a person is erased once (the erased are
  skipped), the batch events count only what committed.  What the law keeps is listed by
  :func:`kept`: it stays restricted (its people are erased: the gate refuses every use of them)
  and the housekeeping deletes it when its declared retention ends.

Where this and the retention sweep of issue 10 §1 meet: both erase through
``people.registry.erase_categories`` + ``people.actions.shred_person`` in batches, resumable by
what is already erased; the sweep picks the persons whose data is past its retention, this one
picks everyone.
"""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import REASON_MAX_LENGTH
from piwarden.cessation import state
from piwarden.cessation.models import Cessation, CessationNotice
from piwarden.people import contacts, notices
from piwarden.people.actions import shred_person
from piwarden.people.models import Person
from piwarden.people.registry import (
    Deletes,
    Keeps,
    Shredded,
    Subject,
    Unattributable,
    erase_categories,
    handlers,
)
from piwarden.policy.declaration import load_declaration

MIN_REASON = 10
BATCH = 100  # persons erased per transaction
ERASURE_REASON = "The website ceased operation on {date} (policy §三(二)): every person's data erased"


class CessationRefused(Exception):
    """The step is not possible now: the message says why and what to do."""


def _reason(text: str, what: str) -> str:
    reason = text.strip()
    if len(reason) < MIN_REASON:
        raise CessationRefused(f"Give a reason of at least {MIN_REASON} characters ({what}).")
    if len(reason) > REASON_MAX_LENGTH:
        raise CessationRefused(f"Give a reason of at most {REASON_MAX_LENGTH} characters.")
    return reason


def live() -> Cessation | None:
    return Cessation.objects.filter(live=True).first()


def _forget_on_commit() -> None:
    """This process reads the standing again: now, and once the change is committed (a request
    that read it meanwhile would otherwise keep the old one for ``state.FRESH_FOR`` seconds)."""
    state.forget()
    transaction.on_commit(state.forget)


@transaction.atomic(durable=True)
def announce(ceases_on: datetime.date, *, reason: str) -> Cessation:
    """Announce that the site ceases on ``ceases_on`` (a day after today), with the operator's reason.

    From the commit on, every page shows the notice, the forms collect nothing, and a notice row
    exists for each person we can reach.  Refused while another announcement is live.
    """
    reason = _reason(reason, "why the site ceases; no personal data")
    today = timezone.localdate()
    if ceases_on <= today:
        raise CessationRefused(
            f"The date must be after today ({today:%Y-%m-%d}): people need time to ask for a copy of their data."
        )
    if Cessation.objects.select_for_update().filter(live=True).exists():
        raise CessationRefused(
            "A cessation is announced already: see `piwarden cessation status`, or withdraw it first."
        )
    cessation = Cessation.objects.create(ceases_on=ceases_on, reason=reason, announced_at=timezone.now())
    notices = _collect(cessation)
    record_event(
        EventType.CESSATION_ANNOUNCED,
        reason=reason,
        extra={"cessation": cessation.pk, "ceases_on": ceases_on.isoformat(), "notices": notices},
    )
    _forget_on_commit()
    return cessation


@transaction.atomic(durable=True)
def withdraw(*, reason: str) -> Cessation:
    """Withdraw the live announcement before its date; its unsent notices are dropped."""
    reason = _reason(reason, "why the cessation is withdrawn")
    cessation = Cessation.objects.select_for_update().filter(live=True).first()
    if cessation is None:
        raise CessationRefused("No cessation is announced: there is nothing to withdraw.")
    if cessation.execution_started_at is not None or timezone.localdate() >= cessation.ceases_on:
        raise CessationRefused(
            f"The date ({cessation.ceases_on:%Y-%m-%d}) has come: the cessation can no longer be withdrawn."
        )
    notices = CessationNotice.objects.filter(cessation=cessation)
    sent = notices.filter(sent_at__isnull=False).count()
    dropped, _ = notices.delete()
    cessation.live = None
    cessation.withdrawn_at = timezone.now()
    cessation.withdrawal_reason = reason
    cessation.save(update_fields=["live", "withdrawn_at", "withdrawal_reason"])
    record_event(
        EventType.CESSATION_WITHDRAWN,
        reason=reason,
        extra={
            "cessation": cessation.pk,
            "ceases_on": f"{cessation.ceases_on}",
            "notices_sent": sent,
            "dropped": dropped,
        },
    )
    _forget_on_commit()
    return cessation


def _collect(cessation: Cessation) -> int:
    """A notice row for every person a contact source holds and who has none yet; how many were made."""
    before = CessationNotice.objects.filter(cessation=cessation).count()
    notices.create_once(CessationNotice(cessation=cessation, person_id=p) for p in contacts.everyone())
    return CessationNotice.objects.filter(cessation=cessation).count() - before


@transaction.atomic(durable=True)
def collect_notices() -> int:
    """Notice rows for the people who became reachable since the announcement (0 when none is live)."""
    cessation = Cessation.objects.select_for_update().filter(live=True, execution_started_at__isnull=True).first()
    if cessation is None:
        return 0
    made = _collect(cessation)
    if made:
        record_event(EventType.CESSATION_NOTICES_ADDED, extra={"cessation": cessation.pk, "notices": made})
    return made


@transaction.atomic(durable=True)
def retry_unconfirmed() -> int:
    """Make the notices claimed but never confirmed sent (a crash while mailing) sendable again.

    The operator's decision: those people may have their notice already, and get a second one.
    """
    cessation = Cessation.objects.select_for_update().filter(live=True).first()
    if cessation is None:
        return 0
    count = CessationNotice.objects.filter(
        cessation=cessation, claimed_at__isnull=False, sent_at__isnull=True, skipped=""
    ).update(claimed_at=None)
    if count:
        record_event(EventType.CESSATION_NOTICES_RETRIED, extra={"cessation": cessation.pk, "notices": count})
    return count


# --- on the date ----------------------------------------------------------------------------


@transaction.atomic(durable=True)
def begin_execution() -> Cessation:
    """Start (or resume) carrying out the live cessation; refused before its date."""
    cessation = Cessation.objects.select_for_update().filter(live=True).first()
    if cessation is None:
        raise CessationRefused("No cessation is announced: announce one with `piwarden cessation announce`.")
    if cessation.executed_at is not None:
        return cessation
    today = timezone.localdate()
    if today < cessation.ceases_on:
        raise CessationRefused(
            f"The cessation is announced for {cessation.ceases_on:%Y-%m-%d}; today is {today:%Y-%m-%d}. "
            "Nothing is erased before the date (it can still be withdrawn)."
        )
    if cessation.execution_started_at is None:
        cessation.execution_started_at = timezone.now()
        cessation.save(update_fields=["execution_started_at"])
        record_event(
            EventType.CESSATION_STARTED,
            extra={"cessation": cessation.pk, "ceases_on": f"{cessation.ceases_on}", "persons": remaining()},
        )
    _forget_on_commit()
    return cessation


def remaining() -> int:
    """Persons not erased yet."""
    return Person.objects.filter(erased_at__isnull=True).count()


@transaction.atomic(durable=True)
def erase_batch(cessation: Cessation, *, size: int = BATCH) -> int:
    """Erase up to ``size`` persons not erased yet, in one transaction; how many were erased."""
    locked = Cessation.objects.select_for_update().get(pk=cessation.pk)
    if locked.execution_started_at is None or locked.executed_at is not None:
        raise CessationRefused("The cessation is not being carried out (begin_execution first).")
    declaration = load_declaration()
    reason = ERASURE_REASON.format(date=f"{locked.ceases_on:%Y-%m-%d}")
    totals: Counter[str] = Counter()
    erased = 0
    batch = Person.objects.select_for_update().filter(erased_at__isnull=True).order_by("pk")[:size]
    for person in batch:
        counts = erase_categories(person, declaration, Subject.VISITOR)
        if shred_person(person, reason=reason, erased=counts):
            erased += 1
            totals.update(counts)
    if erased:
        Cessation.objects.filter(pk=locked.pk).update(persons_erased=F("persons_erased") + erased)
        record_event(
            EventType.CESSATION_BATCH_ERASED,
            extra={"cessation": locked.pk, "persons": erased, "erased": {k: v for k, v in totals.items() if v}},
        )
    return erased


@transaction.atomic(durable=True)
def finish_execution(cessation: Cessation) -> Cessation:
    """Record that every person is erased: what is kept, and why, in the audit log."""
    locked = Cessation.objects.select_for_update().get(pk=cessation.pk)
    if locked.executed_at is not None:
        return locked
    left = remaining()
    if left:
        raise CessationRefused(f"{left} person(s) are not erased yet: run `piwarden cessation execute` again.")
    locked.executed_at = timezone.now()
    locked.save(update_fields=["executed_at"])
    record_event(
        EventType.CESSATION_EXECUTED,
        extra={
            "cessation": locked.pk,
            "persons_erased": locked.persons_erased,
            "kept": [k.category for k in kept()],
        },
    )
    _forget_on_commit()
    return locked


# --- what the law keeps -----------------------------------------------------------------------


@dataclass(frozen=True)
class Kept:
    category: str
    reason: str
    retention_days: int


_STAFF = (
    "About the staff who run this website, not about visitors: the cessation leaves it to the staff "
    "administration (the accounts anchor the audit trail), which deletes it as declared."
)


def kept() -> list[Kept]:
    """Every declared category the cessation does not delete or make unreadable, with the reason.

    Visitor categories kept by their eraser (:class:`~piwarden.people.registry.Keeps`) hold no
    identifying value once their people are erased, and the gate refuses every use of an erased
    person: they are restricted.  The housekeeping deletes each after its declared retention.
    """
    registered = handlers()
    found = []
    for category in load_declaration().categories:
        handler = registered.get(category.id)
        if handler is None:
            continue
        eraser = handler.erase
        if handler.subject is Subject.VISITOR and isinstance(eraser, Deletes | Shredded):
            continue  # deleted, or unreadable: its people's keys are destroyed
        if handler.subject is Subject.STAFF:  # the cessation does not touch staff data
            reason = _STAFF
        else:
            assert isinstance(eraser, Keeps | Unattributable)  # noqa: S101  # the kinds left for visitors and nobody
            reason = eraser.reason
        found.append(Kept(category.id, reason, category.retention_days))
    return found
