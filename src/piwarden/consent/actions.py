"""Write paths for the consent ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.db import transaction
from django.utils import timezone

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.consent.cookies import CookieChoice
from piwarden.consent.models import ConsentKind, ConsentRecord, CookieAction, CookieConsent
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.prepared import PreparedInsert, prepare_insert


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
    given = prepare_consent(person, purpose_id, channel=channel, language=language, shown_text=shown_text, kind=kind)
    with transaction.atomic(savepoint=False):
        return given.record()


@dataclass(frozen=True)
class PreparedConsent:
    """A consent record made but not written: :meth:`record` writes it and its audit event."""

    row: PreparedInsert
    policy_version: str

    def record(self) -> ConsentRecord:
        """Write the record and its event, in the caller's transaction."""
        record = cast(ConsentRecord, self.row.run())
        record_event(
            EventType.CONSENT_GIVEN,
            actor_kind=ActorKind.VISITOR,
            person=record.person,
            purpose=record.purpose,
            extra={
                "consent": str(record.pk),
                "kind": record.kind,
                "channel": record.channel,
                "policy_version": self.policy_version,
            },
        )
        return record


def prepare_consent(
    person: Person,
    purpose_id: str,
    *,
    channel: str,
    language: str,
    shown_text: str,
    kind: ConsentKind = ConsentKind.ORDINARY,
) -> PreparedConsent:
    """The record of ``person``'s consent to ``purpose_id`` as declared now, ready to be written.

    Made before a transaction (the gate does, for the consent given in the act it allows), so
    that only its INSERT runs while the transaction holds SQLite's write lock.  Preparing records
    nothing: a refused act drops it.
    """
    declaration = load_declaration()
    purpose = declaration.purpose(purpose_id)
    record = ConsentRecord(
        person=person,
        purpose=purpose.id,
        kind=kind,
        policy_version=declaration.version,
        policy_id=declaration.digest,  # the link to the published version of that digest
        purpose_hash=declaration.purpose_fingerprint(purpose.id),
        channel=channel,
        language=language,
        shown_text=shown_text,
        given_at=timezone.now(),
    )
    return PreparedConsent(prepare_insert(record), declaration.version)


def withdraw_consent(person: Person, purpose_id: str, *, channel: str) -> int:
    """Mark every active consent of ``person`` to ``purpose_id`` withdrawn; return how many.

    The records only: a person's withdrawal is :func:`piwarden.people.actions.withdraw`, which also
    deletes what was held on that consent alone.
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


def record_cookie_choice(
    choice: CookieChoice, *, action: CookieAction, gpc: bool, channel: str, language: str
) -> CookieConsent:
    """Append a visitor's cookie choice to the ledger, with the cookie declaration it was made under.

    Global Privacy Control has already turned analytics off in ``choice`` (the caller's
    :func:`piwarden.consent.cookies.choice_from`); ``gpc`` records that the browser asked.
    """
    declaration = load_declaration()
    with transaction.atomic(durable=True):
        record = CookieConsent.objects.create(
            consent_id=choice.consent_id,
            action=action,
            functional=choice.functional,
            analytics=choice.analytics,
            gpc=gpc,
            cookies_version=choice.version,
            policy_version=declaration.version,
            channel=channel,
            language=language,
            given_at=timezone.now(),
        )
        record_event(
            EventType.COOKIE_CHOICE,
            actor_kind=ActorKind.VISITOR,
            extra={
                "cookie_consent": str(record.pk),
                "action": record.action,
                "functional": record.functional,
                "analytics": record.analytics,
                "gpc": record.gpc,
                "cookies_version": record.cookies_version,
            },
        )
    return record
