"""What the incident register keeps about a person: the notices sent to them, or to their guardians
(``incident_notices``, ``piwarden.people.registry``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from piwarden.incidents.models import Notice
from piwarden.people.registry import Keeps, Record, Subject, Whose, register

if TYPE_CHECKING:
    from piwarden.processing.gate import Permit


def notices_to(person: Whose) -> QuerySet[Notice]:
    return Notice.objects.filter(person=person)


def export_notices(permit: Permit) -> Iterator[Record]:
    notices = notices_to(permit.person).select_related("incident").order_by("queued_at", "id")
    for notice in notices.iterator(chunk_size=500):
        yield {
            "incident": notice.incident.slug,
            "incident_detected_at": notice.incident.detected_at.isoformat(),
            "recipient": notice.recipient,
            "queued_at": notice.queued_at.isoformat(),
            "sent_at": notice.sent_at.isoformat() if notice.sent_at else None,
            "outcome": notice.outcome,
        }


register(
    "incident_notices",
    subject=Subject.VISITOR,
    export=export_notices,
    erase=Keeps(
        gettext_noop(
            "A notice record is the proof that the duty to notify the persons affected by an incident was met "
            "(PIPL 57); it holds no address or other value of yours, only a random id, and is kept for the "
            "declared period."
        )
    ),
    module=__name__,
    rows=notices_to,
)
