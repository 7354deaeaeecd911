"""The audit log's records about a person, exported and kept (``piwarden.people.registry``).

``access_records`` and ``access_reasons`` are the events whose subject is the person: what was
done with their data, when, under which purpose, and the reasons staff gave.  They are exported
without the staff member's identity (that is the staff member's personal data; the export says
whether staff, the system or the person acted).  They are kept on erasure: PIPL 51 requires
accounting for every access, the events are hash-chained (deleting one breaks verification of
every later one), and they name fields and purposes, never values.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.utils.translation import gettext_noop

from piwarden.audit.models import AuditEvent
from piwarden.people.registry import Keeps, Record, Subject, register
from piwarden.processing.gate import Permit

CHUNK = 500

KEPT = gettext_noop(
    "Kept for accountability (PIPL 51) in the tamper-evident chain, where deleting an event breaks the "
    "verification of every later one; events name fields and purposes, never the person's values."
)


def _events(permit: Permit) -> Iterator[AuditEvent]:
    rows = AuditEvent.objects.filter(person=permit.person).order_by("seq")
    return rows.only("seq", "occurred_at", "event_type", "actor_kind", "purpose", "fields", "reason", "extra").iterator(
        chunk_size=CHUNK
    )


def export_access_records(permit: Permit) -> Iterator[Record]:
    for event in _events(permit):
        yield {
            "seq": event.seq,
            "occurred_at": event.occurred_at.isoformat(),
            "event_type": event.event_type,
            "actor_kind": event.actor_kind,
            "purpose": event.purpose,
            "fields": event.fields,
            "extra": event.extra,
        }


def export_access_reasons(permit: Permit) -> Iterator[Record]:
    reasons = AuditEvent.objects.filter(person=permit.person).exclude(reason="").order_by("seq")
    for seq, reason in reasons.values_list("seq", "reason").iterator(chunk_size=CHUNK):
        yield {"seq": seq, "reason": reason}


register("access_records", subject=Subject.VISITOR, export=export_access_records, erase=Keeps(KEPT), module=__name__)
register("access_reasons", subject=Subject.VISITOR, export=export_access_reasons, erase=Keeps(KEPT), module=__name__)
