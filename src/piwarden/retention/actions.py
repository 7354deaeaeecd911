"""Write paths of retention: a batch of the sweep, legal holds, the clock the sweep trusts.

Each is an entry point in its own durable transaction with its audit event (invariant 3).  A
batch of the sweep (:func:`sweep_batch`) removes up to one batch of rows past their retention,
erases the people nothing else holds any more (each with its own ``person.shredded`` event, and
the erasure ledger), and records one ``retention.batch`` event; whatever a crash interrupts rolls
back whole, and the next run selects it again, so no row is removed twice and none is skipped.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Max, Q
from django.db.models.functions import TruncDay
from django.utils import timezone
from django.utils.translation import gettext_noop

from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditCut, AuditEvent
from piwarden.consent.models import ConsentRecord
from piwarden.monitoring.actions import raise_clock_alert
from piwarden.monitoring.models import Alert, Rule
from piwarden.people.actions import NOT_HOLDING, shred_people
from piwarden.people.models import Person
from piwarden.people.registry import Subject, erase_people_categories, handlers_for
from piwarden.policy.declaration import load_declaration
from piwarden.retention.models import REASON_MAX_LENGTH, LegalHold, SweepClock
from piwarden.retention.rules import SWEPT, Swept, cutoff, retention_days
from piwarden.vault.fields import EncryptedTextField

if TYPE_CHECKING:
    from django.contrib.auth.models import User


# --- the sweep's batches ---------------------------------------------------------------------


def held_persons(now: datetime.datetime) -> list[uuid.UUID]:
    """People a hold in force keeps whole."""
    return [
        p for p in LegalHold.objects.in_force(now).filter(person__isnull=False).values_list("person_id", flat=True) if p
    ]


def held_categories(now: datetime.datetime) -> dict[str, list[int]]:
    """Category → the ids of the holds in force on it."""
    held: dict[str, list[int]] = {}
    for pk, category in LegalHold.objects.in_force(now).exclude(category="").values_list("pk", "category"):
        held.setdefault(category, []).append(pk)
    return held


def expired(rule: Swept, now: datetime.datetime) -> models.QuerySet[Any]:
    """The rows of ``rule`` past their declared retention at ``now`` (holds not applied)."""
    category = load_declaration().category(rule.category)
    return (
        rule.model._default_manager.annotate(_retention_clock=rule.clock)
        .filter(rule.when, _retention_clock__lte=cutoff(category, now))
        .order_by()
    )


def anonymises(rule: Swept) -> bool:
    """Whether the declaration says the rule's rows are anonymised rather than deleted."""
    return load_declaration().category(rule.category).after_retention == "anonymise"


def _encrypted_fields(model: type[models.Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


def not_anonymised(model: type[models.Model]) -> Q:
    """Rows whose personal values are still there (anonymising empties them all)."""
    fields = _encrypted_fields(model)
    return ~Q(**{fields[0]: b""}) if fields else Q()


@dataclass(frozen=True)
class Batch:
    rows: int  # rows deleted or anonymised
    erased: int  # people erased because nothing else held them


@transaction.atomic(durable=True)
def sweep_batch(rule_index: int, keys: Collection[Any], *, now: datetime.datetime, run: str) -> Batch:
    """Remove the rows of ``SWEPT[rule_index]`` among ``keys`` that are still past their retention
    and held by nothing, then erase the people nothing holds any more; one ``retention.batch`` event."""
    rule = SWEPT[rule_index]
    if set(rule.holding) & set(held_categories(now)):
        return Batch(0, 0)  # a hold placed since the batch was chosen
    rows = expired(rule, now).filter(pk__in=list(keys))
    if rule.person is not None:
        rows = rows.exclude(**{f"{rule.person}__in": held_persons(now)})
    anonymise = anonymises(rule)
    if anonymise:
        rows = rows.filter(not_anonymised(rule.model))
    pks = list(rows.values_list("pk", flat=True))
    if not pks:
        return Batch(0, 0)
    chosen = rule.model._default_manager.filter(pk__in=pks)
    persons = set(chosen.values_list(rule.person, flat=True)) if rule.person is not None and rule.erases else set()
    if rule.remove is not None:
        count = rule.remove(chosen)
    elif anonymise:
        count = _anonymise(rule, chosen)
    else:
        _, per_model = chosen.delete()
        count = per_model.get(rule.model._meta.label, 0)
    category = load_declaration().category(rule.category)
    reason = (
        f"Retention sweep: the {rule.category} past its {retention_days(category)} days was the last of "
        "this person's data kept"
    )
    # Anonymised rows stay: the person's eraser of their category must not delete them.
    erased = erase_unheld_persons(persons, reason=reason, now=now, spare=rule.categories if anonymise else ())
    record_event(
        EventType.RETENTION_BATCH,
        extra={
            "run": run,
            "category": rule.category,
            "categories": list(rule.categories),
            "model": rule.name,
            "action": "anonymised" if anonymise else "deleted",
            "rows": count,
            "persons_erased": erased,
            "retention_days": retention_days(category),
            "cutoff": cutoff(category, now).isoformat(),
        },
    )
    return Batch(count, erased)


def _anonymise(rule: Swept, rows: models.QuerySet[Any]) -> int:
    """Empty every personal value of the rows; what is left (product, status, language, the day of
    submission) is statistics.  Their person is erased below when nothing else holds them, which
    destroys the key the values were sealed under: the old ciphertexts in backups stay unreadable."""
    fields = _encrypted_fields(rule.model)
    if not fields:
        raise ValueError(f"{rule.name} holds no encrypted values; anonymising it is not defined")
    changes: dict[str, Any] = dict.fromkeys(fields, b"")
    clock: str | None = getattr(rule.clock, "name", None) if isinstance(rule.clock, models.F) else None
    if clock is not None:  # the day only: no time that matches an audit event's
        changes[clock] = TruncDay(clock)
    return rows.update(**changes)


# What links to a person without keeping them: what never holds a person (people.actions.NOT_HOLDING:
# the audit trail, the network logs, the records that a notice was sent), consent records (the
# proof of consent: withdrawn when the person is erased, then kept as declared), and rows already
# anonymised.
def _holding(model: type[models.Model]) -> Q | None:
    if model._meta.label in NOT_HOLDING or model is ConsentRecord:
        return None
    return not_anonymised(model)


def kept_among(person_ids: Collection[Any]) -> set[Any]:
    """Which of these people something still keeps for a purpose (``people.actions.holders``' rule,
    with consent records and anonymised rows not counted): one query per related model, whatever
    the number of people."""
    kept: set[Any] = set()
    ids = list(person_ids)
    for relation in Person._meta.related_objects:
        if not (relation.one_to_many or relation.one_to_one):
            continue
        holding = _holding(relation.related_model)
        if holding is None:
            continue
        name = relation.field.attname  # the key's column: no model instance built per id
        rows = relation.related_model._default_manager.filter(holding, **{f"{name}__in": ids})
        kept.update(rows.order_by().values_list(name, flat=True).distinct())
    return kept


def erase_unheld_persons(
    person_ids: Iterable[Any], *, reason: str, now: datetime.datetime, spare: Collection[str] = ()
) -> int:
    """Erase, in the caller's transaction, each of these people whom nothing keeps any more and no
    hold covers: every category's eraser (their consents withdrawn), then crypto-shredding with its
    ``person.shredded`` event and the erasure ledger; the erasers of ``spare`` (anonymised
    categories) are not run.  Returns how many were erased."""
    ids = [p for p in person_ids if p is not None]
    if not ids:
        return 0
    declaration = load_declaration()
    held = set(held_persons(now))
    candidates = list(Person.objects.select_for_update().filter(pk__in=ids, erased_at__isnull=True).order_by("pk"))
    kept = kept_among([p.pk for p in candidates])
    only = None
    if spare:
        only = [h.category for h in handlers_for(declaration, Subject.VISITOR) if h.category not in spare]
    chosen = [p for p in candidates if p.pk not in held and p.pk not in kept]
    counts = erase_people_categories(chosen, declaration, only=only)
    return len(shred_people(chosen, reason=reason[:REASON_MAX_LENGTH], erased=counts))


@transaction.atomic(durable=True)
def cut_batch(keys: Collection[Any], *, now: datetime.datetime, categories: Collection[str]) -> int:
    """Delete the audit events among ``keys`` at or below the newest cut that no legal hold in
    force keeps (re-checked here: a hold placed since the batch was chosen; ``categories``: those
    the events hold); how many.  The cut's own ``audit.cut`` event records the deletion, none per
    batch (the trigger allows the DELETE only at or below the greatest cut_seq, whose signature
    ``verify`` checks)."""
    if set(categories) & set(held_categories(now)):
        return 0
    top = AuditCut.objects.aggregate(top=Max("cut_seq"))["top"] or 0
    rows = AuditEvent.objects.filter(pk__in=list(keys), seq__lte=top)
    persons = held_persons(now)
    if persons:
        rows = rows.exclude(person__in=persons)
    deleted, _ = rows.delete()
    return deleted


@transaction.atomic(durable=True)
def erase_people_batch(keys: Collection[Any], *, reason: str, run: str) -> int:
    """Erase the people among ``keys`` not erased yet and held by no hold (the cessation's batch):
    every category's eraser, then crypto-shredding; one ``retention.batch`` event.  Returns how many."""
    now = timezone.now()
    held = set(held_persons(now))
    people = Person.objects.select_for_update().filter(pk__in=list(keys), erased_at__isnull=True).order_by("pk")
    chosen = [p for p in people if p.pk not in held]
    counts = erase_people_categories(chosen, load_declaration())
    erased = len(shred_people(chosen, reason=reason, erased=counts))
    record_event(EventType.RETENTION_BATCH, extra={"run": run, "category": "people", "persons_erased": erased})
    return erased


@transaction.atomic(durable=True)
def trust_clock(now: datetime.datetime) -> None:
    """Remember ``now`` as the clock reading of the last sweep that passed the clock guard."""
    SweepClock.objects.update_or_create(pk=1, defaults={"trusted_at": now})


@transaction.atomic(durable=True)
def alert_clock_ahead(*, now: datetime.datetime, reference: datetime.datetime) -> Alert | None:
    """The sweep found the clock ahead of the last reading it trusted by more than the bound: one
    alert per newest sealed audit event (a sweep refused again with nothing new in the log raises
    none), from the trusted reading to the clock's, e-mailed to the security role."""
    seal_top = AuditEvent.objects.aggregate(top=Max("seq"))["top"] or 0
    if Alert.objects.filter(rule=Rule.CLOCK_AHEAD, last_seq=seal_top).exists():
        return None
    return raise_clock_alert(
        Rule.CLOCK_AHEAD,
        seq=seal_top,
        first_at=reference,
        last_at=now,
        bound=datetime.timedelta(hours=settings.PIWARDEN_RETENTION_CLOCK_SKEW),
        extra={"clock": now.isoformat(), "trusted": reference.isoformat()},
    )


@transaction.atomic(durable=True)
def confirm_clock(*, now: datetime.datetime, reference: datetime.datetime | None, by: User | None = None) -> None:
    """The operator says the clock is right after all (the site was stopped that long): trusted, audited."""
    SweepClock.objects.update_or_create(pk=1, defaults={"trusted_at": now})
    record_event(
        EventType.RETENTION_CLOCK_CONFIRMED,
        actor=by,
        extra={"clock": now.isoformat(), "trusted_before": reference.isoformat() if reference else None},
    )


# --- legal holds -----------------------------------------------------------------------------

MIN_HOLD_REASON = 10


class HoldRefused(ValueError):
    """The hold cannot be placed or lifted: the message says why (translatable msgid)."""


def _reason(text: str) -> str:
    reason = text.strip()
    if not MIN_HOLD_REASON <= len(reason) <= REASON_MAX_LENGTH:
        raise HoldRefused(gettext_noop("Give a reason of 10 to 200 characters (a case or file reference)."))
    return reason


@transaction.atomic(durable=True)
def place_hold(
    *,
    person: Person | None = None,
    category: str = "",
    reason: str,
    ends_on: datetime.date,
    by: User | None = None,
) -> LegalHold:
    """Keep one person's data, or a whole category, past its retention until ``ends_on`` (inclusive)."""
    reason = _reason(reason)
    if (person is None) == (not category):
        raise HoldRefused(gettext_noop("A hold covers one person or one category."))
    if category and category not in {c.id for c in load_declaration().categories}:
        raise HoldRefused(gettext_noop("No such data category is declared."))
    if ends_on < timezone.now().date():
        raise HoldRefused(gettext_noop("The last day of the hold cannot be in the past."))
    hold = LegalHold.objects.create(
        person=person, category=category, reason=reason, ends_on=ends_on, placed_at=timezone.now(), placed_by=by
    )
    record_event(
        EventType.RETENTION_HOLD_PLACED,
        actor=by,
        person=person,
        purpose="legal_hold",
        reason=reason,
        extra={"hold": hold.pk, "category": category, "ends_on": ends_on.isoformat()},
    )
    return hold


@transaction.atomic(durable=True)
def lift_hold(hold_id: int, *, reason: str, by: User | None = None) -> LegalHold:
    """End a hold before its last day, with the reason; the sweep removes what it kept on its next run."""
    reason = _reason(reason)
    hold = LegalHold.objects.select_for_update().filter(pk=hold_id).first()
    if hold is None:
        raise HoldRefused(gettext_noop("No such legal hold."))
    if hold.lifted_at is not None:
        raise HoldRefused(gettext_noop("This hold was lifted already."))
    hold.lifted_at = timezone.now()
    hold.lifted_by = by
    hold.lift_reason = reason
    hold.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    record_event(
        EventType.RETENTION_HOLD_LIFTED,
        actor=by,
        person=hold.person,
        purpose="legal_hold",
        reason=reason,
        extra={"hold": hold.pk, "category": hold.category, "ends_on": hold.ends_on.isoformat()},
    )
    return hold
