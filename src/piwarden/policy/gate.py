"""The processing gate: may this person's data of this category be used for this purpose?

Every use of personal data for a purpose (answering a request, e-mailing,
revealing to staff, sharing, statistics, transfer) asks the gate first.  It
decides on (person, purpose, category) and says *why* in a :class:`Decision`:

* the purpose is not declared → refused;
* the category is not declared, or does not list the purpose → refused
  (purpose binding: data collected to answer a request is not read "for
  security" because some other category serves security, PIPL 6 and 14);
* the person's data was erased → refused;
* the person restricted processing → refused (PIPL 44), except for the
  purposes the declaration marks ``survives_restriction`` (storage and
  security, PIPL 47 para 2);
* the purpose rests on consent → allowed only with an active consent whose
  fingerprint matches the purpose as declared *now* (a changed purpose needs
  re-consent, PIPL 14(2)); separate consent is required where the purpose
  demands it;
* the purpose rests on another PIPL Art 13 basis → allowed, and the use of
  that basis is written to the audit log.

The entry point is :func:`processing`: it decides, records, and holds the
transaction in which the caller uses the data.  It opens a *durable*
transaction, so it cannot run inside a caller's transaction: a refusal is
committed before the caller hears of it, and no rollback of the caller's can
take the record back.  :func:`check` is the side-effect-free decision (for
display and for tests); :func:`require` is the older in-transaction form whose
refusal record the caller's rollback loses, kept for the submission path that
records consent and uses it in one transaction (issue 6 moves it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils.translation import gettext_noop

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.people.models import Person
from piwarden.policy.declaration import LegalBasis, load_declaration

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class Decision:
    allowed: bool
    purpose: str
    basis: str
    reason: str
    category: str = ""

    def __bool__(self) -> bool:
        return self.allowed


class ProcessingRefused(Exception):
    def __init__(self, decision: Decision) -> None:
        super().__init__(f"processing for {decision.purpose!r} refused: {decision.reason}")
        self.decision = decision


@dataclass(frozen=True)
class Use:
    """Who uses the data and how the attempt appears in the audit log.

    ``stated_reason`` is a staff member's own words: it goes to the event's reason column (the
    gate's reason is then in ``extra["refusal"]``).  ``refused_event`` lets a staff reveal keep
    its own event type, so that one attempt is one row.
    """

    context: str
    actor: AbstractBaseUser | None = None
    actor_kind: ActorKind | None = None
    fields: Collection[str] = ()
    stated_reason: str = ""
    refused_event: EventType = EventType.PROCESSING_REFUSED
    extra: Mapping[str, Any] = field(default_factory=dict)


def check(person: Person, purpose_id: str, *, category: str, separate: bool = False) -> Decision:
    """Decide without side effects."""
    declaration = load_declaration()
    try:
        purpose = declaration.purpose(purpose_id)
    except KeyError:
        undeclared = gettext_noop("the purpose is not declared in the privacy policy")
        return Decision(False, purpose_id, "", undeclared, category)
    basis = purpose.legal_basis.value
    try:
        declared = declaration.category(category)
    except KeyError:
        refused = gettext_noop("this category of data is not declared in the privacy policy")
        return Decision(False, purpose_id, basis, refused, category)
    if purpose_id not in declared.purposes:
        refused = gettext_noop("the privacy policy does not declare this purpose for this category of data")
        return Decision(False, purpose_id, basis, refused, category)
    if person.is_erased:
        return Decision(False, purpose_id, basis, gettext_noop("the person's data has been erased"), category)
    if person.is_restricted and not purpose.survives_restriction:
        restricted = gettext_noop("the person has restricted processing of their data")
        return Decision(False, purpose_id, basis, restricted, category)
    if purpose.legal_basis is not LegalBasis.CONSENT:
        return Decision(True, purpose_id, basis, f"legal basis: {basis}", category)
    consents = ConsentRecord.objects.filter(person=person).for_purpose(purpose_id).active()
    if separate:
        consents = consents.filter(kind=ConsentKind.SEPARATE)
    fingerprints = set(consents.values_list("purpose_hash", flat=True))  # one query answers both questions
    if not fingerprints:
        reason = (
            gettext_noop("no active separate consent for this purpose")
            if separate
            else gettext_noop("no active consent for this purpose")
        )
        return Decision(False, purpose_id, basis, reason, category)
    if purpose.fingerprint not in fingerprints:
        changed = gettext_noop("the purpose changed since consent was given; consent must be asked again")
        return Decision(False, purpose_id, basis, changed, category)
    return Decision(True, purpose_id, basis, gettext_noop("active consent"), category)


def _decide(person: Person, purpose_id: str, categories: Collection[str], separate: bool) -> Decision:
    """All categories must allow the purpose; the first refusal answers."""
    if not categories:
        raise ValueError("a use of personal data names at least one category")
    decisions = [check(person, purpose_id, category=c, separate=separate) for c in sorted(categories)]
    return next((d for d in decisions if not d.allowed), decisions[0])


def _record(decision: Decision, person: Person, use: Use) -> None:
    """The audit row of a decision: every refusal, and every use of a non-consent basis."""
    if decision.allowed and decision.basis == LegalBasis.CONSENT.value:
        return  # the consent record is the evidence (CON-01)
    extra = {"context": use.context, "category": decision.category, **use.extra}
    if decision.allowed:
        event, reason = EventType.PROCESSING_UNDER_BASIS, decision.reason
        extra["basis"] = decision.basis
    else:
        event, reason = use.refused_event, use.stated_reason or decision.reason
        extra["refusal"] = decision.reason
    record_event(
        event,
        actor=use.actor,
        actor_kind=use.actor_kind,
        person=person,
        purpose=decision.purpose,
        fields=use.fields,
        reason=reason,
        extra=extra,
    )


@contextmanager
def processing(
    person: Person, purpose_id: str, *, categories: Collection[str], use: Use, separate: bool = False
) -> Iterator[Decision]:
    """Ask the gate, record the answer, and run the caller's use of the data in one transaction.

    ::

        with gate.processing(person, "respond_inquiry", categories={"consultation"}, use=Use("...")):
            ...  # read or send the data; an exception here rolls the use (and its record) back

    On refusal the refusal is committed first, then :class:`ProcessingRefused` is raised; the
    body never runs.  The transaction is durable: calling this inside another transaction is a
    programming error (Django raises ``RuntimeError``), because that caller's rollback would
    otherwise erase the refusal.
    """
    with transaction.atomic(durable=True):
        decision = _decide(person, purpose_id, categories, separate)
        _record(decision, person, use)
        if decision.allowed:
            yield decision
            return
    raise ProcessingRefused(decision)


def require(person: Person, purpose_id: str, *, category: str, separate: bool = False, context: str = "") -> Decision:
    """Check and record inside the caller's transaction; raise ProcessingRefused on refusal.

    The refusal record joins the caller's transaction and is lost if it rolls back: prefer
    :func:`processing`.  Kept for a use that must share the transaction of the write it guards.
    """
    decision = check(person, purpose_id, category=category, separate=separate)
    _record(decision, person, Use(context=context))
    if not decision.allowed:
        raise ProcessingRefused(decision)
    return decision
