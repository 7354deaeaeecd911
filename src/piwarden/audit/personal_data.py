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

from django.db.models import UUIDField
from django.utils.translation import gettext_noop

from piwarden.audit.models import AuditEvent
from piwarden.people.registry import Keeps, Record, Subject, register
from piwarden.prepared import Param, PreparedSelect
from piwarden.processing.gate import Permit

CHUNK = 500

KEPT = gettext_noop(
    "Kept for accountability (PIPL 51) in the tamper-evident chain, where deleting an event breaks the "
    "verification of every later one; events name fields and purposes, never the person's values."
)


_EVENTS = PreparedSelect(
    lambda: (
        AuditEvent.objects.filter(person_id=Param("person", UUIDField()))
        .order_by("seq")
        .values_list("seq", "occurred_at", "event_type", "actor_kind", "purpose", "fields", "extra")
    )
)
_REASONS = PreparedSelect(
    lambda: (
        AuditEvent.objects.filter(person_id=Param("person", UUIDField()))
        .exclude(reason="")
        .order_by("seq")
        .values_list("seq", "reason")
    )
)


def export_access_records(permit: Permit) -> Iterator[Record]:
    for seq, occurred_at, event_type, actor_kind, purpose, fields, extra in _EVENTS.rows(
        person=permit.person.pk, chunk=CHUNK
    ):
        yield {
            "seq": seq,
            "occurred_at": occurred_at.isoformat(),
            "event_type": event_type,
            "actor_kind": actor_kind,
            "purpose": purpose,
            "fields": fields,
            "extra": extra,
        }


def export_access_reasons(permit: Permit) -> Iterator[Record]:
    for seq, reason in _REASONS.rows(person=permit.person.pk, chunk=CHUNK):
        yield {"seq": seq, "reason": reason}


register("access_records", subject=Subject.VISITOR, export=export_access_records, erase=Keeps(KEPT), module=__name__)
register("access_reasons", subject=Subject.VISITOR, export=export_access_reasons, erase=Keeps(KEPT), module=__name__)
