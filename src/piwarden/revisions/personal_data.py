"""The direct notices of policy changes a person received, exported and erased (``piwarden.people.registry``)."""

from __future__ import annotations

from collections.abc import Iterator

from piwarden.people.models import Person
from piwarden.people.registry import Deletes, Record, Subject, register
from piwarden.processing.gate import Permit
from piwarden.revisions.models import ChangeNotice


def export_notices(permit: Permit) -> Iterator[Record]:
    notices = ChangeNotice.objects.filter(person=permit.person).select_related("version").order_by("created_at", "pk")
    for notice in notices.iterator(chunk_size=200):
        yield {
            "policy_version": notice.version.label,
            "outcome": notice.outcome,
            "created_at": notice.created_at.isoformat(),
            "sent_at": notice.sent_at.isoformat() if notice.sent_at else None,
        }


def erase_notices(person: Person) -> int:
    deleted, _ = ChangeNotice.objects.filter(person=person).delete()
    return deleted


register(
    "policy_notices", subject=Subject.VISITOR, export=export_notices, erase=Deletes(erase_notices), module=__name__
)
