"""The direct notices of policy changes a person received, exported and erased (``piwarden.people.registry``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.db.models import QuerySet, UUIDField

from piwarden.people.models import Person
from piwarden.people.registry import Counts, Deletes, Record, Subject, Whose, delete_counted, keys, register
from piwarden.prepared import Param, PreparedSelect
from piwarden.processing.gate import Permit
from piwarden.revisions.models import ChangeNotice


def notices(person: Whose) -> QuerySet[ChangeNotice]:
    return ChangeNotice.objects.filter(person=person)


_EXPORTED = PreparedSelect(
    lambda: (
        notices(Param("person", UUIDField()))
        .order_by("created_at", "id")
        .values_list("version__label", "outcome", "created_at", "sent_at")
    )
)


def export_notices(permit: Permit) -> Iterator[Record]:
    for label, outcome, created_at, sent_at in _EXPORTED.rows(person=permit.person.pk, chunk=200):
        yield {
            "policy_version": label,
            "outcome": outcome,
            "created_at": created_at.isoformat(),
            "sent_at": sent_at.isoformat() if sent_at else None,
        }


def erase_notices(people: Sequence[Person]) -> Counts:
    return delete_counted(ChangeNotice.objects.filter(person_id__in=keys(people)), "person")


register(
    "policy_notices",
    subject=Subject.VISITOR,
    export=export_notices,
    erase=Deletes.people(erase_notices),
    module=__name__,
    rows=notices,
)
