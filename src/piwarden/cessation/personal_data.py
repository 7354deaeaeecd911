"""What the cessation stores about a person, exported and erased (``piwarden.people.registry``).

``cessation_notices``: that the person was sent the notice of the site's cessation, and when
(the row links the announcement and the person; the address is read from the consultation or
rights data when sending, never copied here).  Erasure deletes the rows; the audit log keeps the
``cessation.notice_sent`` event as the proof that the person was told.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.db.models import QuerySet

from piwarden.cessation.models import CessationNotice
from piwarden.people.models import Person
from piwarden.people.registry import Counts, Deletes, Record, Subject, Whose, delete_counted, keys, register
from piwarden.processing.gate import Permit

CATEGORY = "cessation_notices"


def notices(person: Whose) -> QuerySet[CessationNotice]:
    return CessationNotice.objects.filter(person=person)


def export_notices(permit: Permit) -> Iterator[Record]:
    rows = (
        notices(permit.person)
        .order_by("created_at", "pk")
        .values_list("cessation__ceases_on", "created_at", "sent_at", "skipped")
    )
    for ceases_on, created_at, sent_at, skipped in rows:
        yield {
            "ceases_on": ceases_on.isoformat(),
            "created_at": created_at.isoformat(),
            "sent_at": sent_at.isoformat() if sent_at else None,
            "not_sent_because": skipped or None,
        }


def erase_notices(people: Sequence[Person]) -> Counts:
    return delete_counted(CessationNotice.objects.filter(person_id__in=keys(people)), "person")


register(
    CATEGORY,
    subject=Subject.VISITOR,
    export=export_notices,
    erase=Deletes.people(erase_notices),
    module=__name__,
    rows=notices,
)
