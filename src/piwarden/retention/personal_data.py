"""Legal holds in the registry of exporters and erasers (``piwarden.people.registry``).

``legal_holds``: the holds on a person are exported (scope, reason, dates) and kept on erasure: a
hold is there precisely because a legal matter needs the data; it is deleted three years after it
ended (:mod:`piwarden.retention.rules`).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from piwarden.people.registry import Keeps, Record, Subject, Whose, register
from piwarden.processing.gate import Permit
from piwarden.retention.models import LegalHold


def _iso(value: object) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else None


def holds(person: Whose) -> QuerySet[LegalHold]:
    return LegalHold.objects.filter(person=person)


def export_holds(permit: Permit) -> Iterator[Record]:
    for hold in holds(permit.person).order_by("placed_at", "id"):
        yield {
            "reason": hold.reason,
            "ends_on": _iso(hold.ends_on),
            "placed_at": _iso(hold.placed_at),
            "lifted_at": _iso(hold.lifted_at),
            "lift_reason": hold.lift_reason,
        }


register(
    "legal_holds",
    subject=Subject.VISITOR,
    export=export_holds,
    erase=Keeps(
        gettext_noop(
            "A legal hold exists because a court, an authority or a legal claim needs the data kept; it is deleted "
            "three years after it ends."
        )
    ),
    module=__name__,
    rows=holds,
)
