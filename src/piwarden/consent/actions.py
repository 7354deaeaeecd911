"""Write paths for the consent ledger."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.prepared import prepare_insert


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
        record = ConsentRecord(
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
        prepare_insert(record).run()  # the statement's text built once (piwarden.prepared)
        record_event(
            EventType.CONSENT_GIVEN,
            actor_kind=ActorKind.VISITOR,
            person=person,
            purpose=purpose.id,
            extra={"consent": str(record.pk), "kind": kind, "channel": channel, "policy_version": declaration.version},
        )
    return record


def withdraw_consent(person: Person, purpose_id: str, *, channel: str) -> int:
    """Withdraw every active consent of ``person`` to ``purpose_id``; return how many."""
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
