"""The processing gate: may this person's data be used for this purpose?

Every use of personal data for a purpose (answering a request, e-mailing,
revealing to staff, sharing, statistics, transfer) asks :func:`check` or
:func:`require` first.  The answer is a :class:`Decision` that says *why*:

* the purpose is not declared → refused;
* the person's data was erased → refused;
* the person restricted processing → refused (PIPL 44), except for the
  purposes the declaration marks ``survives_restriction`` (storage and
  security, PIPL 47 para 2);
* the purpose rests on consent → allowed only with an active consent whose
  fingerprint matches the purpose as declared *now* (a changed purpose needs
  re-consent, PIPL 14(2)); separate consent is required where the purpose
  demands it;
* the purpose rests on another PIPL Art 13 basis → allowed, and the caller
  records the basis in the audit log (``require`` does it).

Refusals are never silent: ``require`` raises :class:`ProcessingRefused`
carrying the reason, and records the refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_noop

from piwarden.audit.log import EventType, record_event
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.people.models import Person
from piwarden.policy.declaration import LegalBasis, load_declaration


@dataclass(frozen=True)
class Decision:
    allowed: bool
    purpose: str
    basis: str
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


class ProcessingRefused(Exception):
    def __init__(self, decision: Decision) -> None:
        super().__init__(f"processing for {decision.purpose!r} refused: {decision.reason}")
        self.decision = decision


def check(person: Person, purpose_id: str, *, separate: bool = False) -> Decision:
    """Decide without side effects."""
    declaration = load_declaration()
    try:
        purpose = declaration.purpose(purpose_id)
    except KeyError:
        return Decision(False, purpose_id, "", gettext_noop("the purpose is not declared in the privacy policy"))
    basis = purpose.legal_basis.value
    if person.is_erased:
        return Decision(False, purpose_id, basis, gettext_noop("the person's data has been erased"))
    if person.is_restricted and not purpose.survives_restriction:
        return Decision(False, purpose_id, basis, gettext_noop("the person has restricted processing of their data"))
    if purpose.legal_basis is not LegalBasis.CONSENT:
        return Decision(True, purpose_id, basis, f"legal basis: {basis}")
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
        return Decision(False, purpose_id, basis, reason)
    if purpose.fingerprint not in fingerprints:
        changed = gettext_noop("the purpose changed since consent was given; consent must be asked again")
        return Decision(False, purpose_id, basis, changed)
    return Decision(True, purpose_id, basis, gettext_noop("active consent"))


def require(person: Person, purpose_id: str, *, separate: bool = False, context: str = "") -> Decision:
    """Check and record: raise ProcessingRefused on refusal; audit a non-consent basis.

    Must run inside a transaction (the audit event joins it).
    """
    decision = check(person, purpose_id, separate=separate)
    if not decision.allowed:
        record_event(
            EventType.PROCESSING_REFUSED,
            person=person,
            purpose=purpose_id,
            reason=decision.reason,
            extra={"context": context},
        )
        raise ProcessingRefused(decision)
    if decision.basis != LegalBasis.CONSENT.value:
        record_event(
            EventType.PROCESSING_UNDER_BASIS,
            person=person,
            purpose=purpose_id,
            reason=decision.reason,
            extra={"context": context, "basis": decision.basis},
        )
    return decision
