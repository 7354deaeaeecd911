"""The consent ledger's data about a person, exported and erased (``piwarden.people.registry``).

``consent_records`` prove what the person agreed to (PIPL 14: consent must be demonstrable).
Erasure withdraws every consent still active and keeps the records: they hold no identifying
value (an opaque link to the person, our own texts, times), and the declaration keeps them for
their retention counted from the withdrawal, so that what was done before stays provably lawful.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.utils import timezone
from django.utils.translation import gettext_noop

from piwarden.consent.models import ConsentRecord
from piwarden.people.models import Person
from piwarden.people.registry import Keeps, Record, Subject, register
from piwarden.processing.gate import Permit

CHUNK = 200


def export_consents(permit: Permit) -> Iterator[Record]:
    records = ConsentRecord.objects.filter(person=permit.person).order_by("given_at", "id")
    for record in records.iterator(chunk_size=CHUNK):
        yield {
            "purpose": record.purpose,
            "kind": record.kind,
            "policy_version": record.policy_version,
            "channel": record.channel,
            "language": record.language,
            "shown_text": record.shown_text,
            "given_at": record.given_at.isoformat(),
            "withdrawn_at": record.withdrawn_at.isoformat() if record.withdrawn_at else None,
        }


def withdraw_all(person: Person) -> int:
    return ConsentRecord.objects.filter(person=person).active().update(withdrawn_at=timezone.now())


register(
    "consent_records",
    subject=Subject.VISITOR,
    export=export_consents,
    erase=Keeps(
        gettext_noop(
            "Proof of consent (PIPL 14) for what was done before the erasure; no identifying value. Every active "
            "consent is withdrawn, and the records are deleted at the end of their declared retention."
        ),
        restrict=withdraw_all,
    ),
    module=__name__,
)
