"""Write paths for the consent ledger."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.people.models import Person
from piwarden.people.registry import EXPORT_PURPOSE, Subject, erase_categories
from piwarden.policy.declaration import Declaration, LegalBasis, load_declaration


def record_consent(
    person: Person,
    purpose_id: str,
    *,
    channel: str,
    language: str,
    shown_text: str,
    kind: ConsentKind = ConsentKind.ORDINARY,
) -> ConsentRecord:
    """Record that ``person`` agreed to ``purpose_id`` having been shown ``shown_text``.

    Joins the caller's transaction without a savepoint (or opens one) and writes its audit
    event beside the record.
    """
    declaration = load_declaration()
    purpose = declaration.purpose(purpose_id)
    with transaction.atomic(savepoint=False):
        record = ConsentRecord.objects.create(
            person=person,
            purpose=purpose.id,
            kind=kind,
            policy_version=declaration.version,
            policy_hash=declaration.digest,
            purpose_hash=purpose.fingerprint,
            channel=channel,
            language=language,
            shown_text=shown_text,
            given_at=timezone.now(),
        )
        record_event(
            EventType.CONSENT_GIVEN,
            actor_kind=ActorKind.VISITOR,
            person=person,
            purpose=purpose.id,
            extra={"consent": str(record.pk), "kind": kind, "channel": channel, "policy_version": declaration.version},
        )
    return record


def withdraw_consent(person: Person, purpose_id: str, *, channel: str) -> int:
    """Mark every active consent of ``person`` to ``purpose_id`` withdrawn; return how many.

    The records only: a person's withdrawal is :func:`withdraw`, which also deletes what was held
    on that consent alone.
    """
    with transaction.atomic():
        now = timezone.now()
        count = ConsentRecord.objects.filter(person=person).for_purpose(purpose_id).active().update(withdrawn_at=now)
        if count:
            record_event(
                EventType.CONSENT_WITHDRAWN,
                actor_kind=ActorKind.VISITOR,
                person=person,
                purpose=purpose_id,
                extra={"channel": channel, "records": count},
            )
    return count


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal did: consent records marked withdrawn (kept), and rows deleted per category."""

    records: int
    deleted: dict[str, int]
    kept: list[str]  # categories the purpose uses that rest on another basis too: kept


def held_only_on(declaration: Declaration, purpose_id: str) -> tuple[list[str], list[str]]:
    """(categories held only on the consent to ``purpose_id``, the other categories the purpose uses).

    A category is held only on that consent when every purpose it is declared for is that one,
    leaving aside :data:`~piwarden.people.registry.EXPORT_PURPOSE`: answering a person's request
    about their data is no reason to keep it.  A category that also serves a purpose on another
    basis (proving consent, security: a legal duty) stays, as the privacy page says (§六).
    """
    only: list[str] = []
    kept: list[str] = []
    for category in declaration.categories:
        if purpose_id not in category.purposes:
            continue
        others = set(category.purposes) - {purpose_id, EXPORT_PURPOSE}
        (kept if others else only).append(category.id)
    return only, kept


@transaction.atomic(durable=True)
def withdraw(person: Person, purpose_id: str, *, channel: str, reference: str) -> Withdrawal:
    """The person withdraws their consent to ``purpose_id`` (PIPL 15, 47(1)(3); policy §六).

    The consent records are kept, marked withdrawn, so that what was done before stays provably
    lawful; the gate refuses every use for the purpose from now on (it needs an active consent);
    and the data held only on that consent (:func:`held_only_on`) is deleted by its categories'
    erasers (the person's consultation requests, the background jobs about them, the copies of the
    e-mails sent to them), in this same transaction.  ``reference``: the request's, for the audit.
    Returns the counts; a second withdrawal finds nothing to do and records nothing.
    """
    declaration = load_declaration()
    try:
        purpose = declaration.purpose(purpose_id)
    except KeyError:
        raise ValueError(f"{purpose_id!r} is not a purpose of the privacy policy") from None
    if purpose.legal_basis is not LegalBasis.CONSENT:
        raise ValueError(f"{purpose_id!r} does not rest on consent: there is no consent to withdraw")
    locked = Person.objects.select_for_update().get(pk=person.pk)
    only, kept = held_only_on(declaration, purpose_id)
    records = ConsentRecord.objects.filter(person=locked).for_purpose(purpose_id).active()
    count = records.update(withdrawn_at=timezone.now())
    deleted = erase_categories(locked, declaration, Subject.VISITOR, only=only)
    if count or any(deleted.values()):
        record_event(
            EventType.CONSENT_WITHDRAWN,
            actor_kind=ActorKind.VISITOR,
            person=locked,
            purpose=purpose_id,
            extra={"channel": channel, "records": count, "reference": reference, "deleted": deleted, "kept": kept},
        )
    return Withdrawal(records=count, deleted=deleted, kept=kept)
