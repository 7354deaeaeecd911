"""The consent ledger's data about a person, exported and erased (``piwarden.people.registry``).

``consent_records`` prove what the person agreed to (PIPL 14: consent must be demonstrable).
Erasure withdraws every consent still active and keeps the records: they hold no identifying
value (an opaque link to the person, our own texts, times), and the declaration keeps them for
their retention counted from the withdrawal, so that what was done before stays provably lawful.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.db.models import UUIDField
from django.utils import timezone
from django.utils.translation import gettext_noop

from piwarden.consent.models import ConsentRecord
from piwarden.people.models import Person
from piwarden.people.registry import Counts, Keeps, Record, Subject, count_by, keys, register
from piwarden.prepared import Param, PreparedSelect
from piwarden.processing.gate import Permit

CHUNK = 200


_EXPORTED = PreparedSelect(
    lambda: (
        ConsentRecord.objects.filter(person_id=Param("person", UUIDField()))
        .order_by("given_at", "id")
        .values_list(
            "purpose", "kind", "policy_version", "channel", "language", "shown_text", "given_at", "withdrawn_at"
        )
    )
)


def export_consents(permit: Permit) -> Iterator[Record]:
    for purpose, kind, version, channel, language, shown_text, given_at, withdrawn_at in _EXPORTED.rows(
        person=permit.person.pk, chunk=CHUNK
    ):
        yield {
            "purpose": purpose,
            "kind": kind,
            "policy_version": version,
            "channel": channel,
            "language": language,
            "shown_text": shown_text,
            "given_at": given_at.isoformat(),
            "withdrawn_at": withdrawn_at.isoformat() if withdrawn_at else None,
        }


def withdraw_all(people: Sequence[Person]) -> Counts:
    active = ConsentRecord.objects.filter(person_id__in=keys(people)).active()
    counts = count_by(active, "person")
    if counts:
        active.update(withdrawn_at=timezone.now())
    return counts


register(
    "consent_records",
    subject=Subject.VISITOR,
    export=export_consents,
    erase=Keeps.people(
        gettext_noop(
            "Proof of consent (PIPL 14) for what was done before the erasure; no identifying value. Every active "
            "consent is withdrawn, and the records are deleted at the end of their declared retention."
        ),
        withdraw_all,
    ),
    module=__name__,
)
