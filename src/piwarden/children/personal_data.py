"""What children's protection stores about a person, exported and erased (``piwarden.people.registry``).

* ``guardian_contacts``: the e-mail of each guardian asked to consent for the child, decrypted;
  erasure deletes the guardian requests (their states and dates, declared in
  ``child_protection_records``, go with them).
* ``child_protection_records``: the mark that the person's data is a child's, each guardian
  request's state, and the age statement of each consultation request; erasure deletes the mark
  and clears the statements (the request rows themselves go with the consultation's eraser).
* ``child_sign_ups_awaiting_guardian``: belongs to no person (``Unattributable``).

The guardians of a child are who an incident's notice reaches besides the child (CHD-06): this
module registers :class:`Guardians` with :mod:`piwarden.people.guardians`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Iterator, Sequence

from django.db.models import QuerySet

from piwarden.children.access import CONTACTS
from piwarden.children.models import ChildMark, GuardianRequest, GuardianRequestStatus
from piwarden.inquiries.models import Inquiry
from piwarden.people.guardians import register_guardian_source
from piwarden.people.models import Person
from piwarden.people.registry import (
    Counts,
    Deletes,
    Record,
    Subject,
    Unattributable,
    Whose,
    count_by,
    delete_counted,
    keys,
    register,
)
from piwarden.processing.gate import Permit


def _iso(value: object) -> str | None:
    return value.isoformat() if value is not None else None  # type: ignore[attr-defined]  # a datetime


def guardian_requests(person: Whose) -> QuerySet[GuardianRequest]:
    return GuardianRequest.objects.filter(person=person)


def marks(person: Whose) -> QuerySet[ChildMark]:
    return ChildMark.objects.filter(person=person)


def age_statements(person: Whose) -> QuerySet[Inquiry]:
    return Inquiry.objects.filter(person=person).exclude(age_statement="")


def child_records(person: Whose) -> tuple[QuerySet[ChildMark], QuerySet[Inquiry]]:
    # A guardian request always marks its person, so the marks and the age statements find them all.
    return marks(person), age_statements(person)


def export_guardian_contacts(permit: Permit) -> Iterator[Record]:
    for request in guardian_requests(permit.person).order_by("created_at", "id"):
        yield {"guardian_email": request.guardian_email, "asked_at": request.created_at.isoformat()}


def erase_guardian_contacts(people: Sequence[Person]) -> Counts:
    return delete_counted(GuardianRequest.objects.filter(person_id__in=keys(people)), "person")


def export_records(permit: Permit) -> Iterator[Record]:
    found = list(marks(permit.person))
    for mark in found:
        yield {
            "child_mark": mark.reason,
            "marked_at": mark.marked_at.isoformat(),
            "guardian_consented_at": _iso(mark.guardian_consented_at),
            "erasure_due_at": _iso(mark.erasure_due_at),
        }
    # A guardian request always marks its person (and the erasers delete both): most people have neither.
    requests = guardian_requests(permit.person).order_by("created_at", "id") if found else []
    for request in requests:
        yield {
            "guardian_request": request.status,
            "language": request.language,
            "purposes": list(request.purposes),
            "created_at": request.created_at.isoformat(),
            "expires_at": request.expires_at.isoformat(),
            "decided_at": _iso(request.decided_at),
            "mailed_at": _iso(request.mailed_at),
        }
    rows = age_statements(permit.person).order_by("submitted_at", "id")
    for reference, statement in rows.values_list("reference", "age_statement"):
        yield {"consultation_request": reference, "age_statement": statement}


# Nothing of the child is stored before the guardian consents (CHD-01): no person, no index.
AWAITING = (
    "A child's sign-up awaiting a guardian is sealed under its request's own key and tied to no person: nobody "
    "can be found by it; the guardian's answer or the link's expiry destroys it."
)


def erase_records(people: Sequence[Person]) -> Counts:
    counts = Counter(delete_counted(ChildMark.objects.filter(person_id__in=keys(people)), "person"))
    stated = Inquiry.objects.filter(person_id__in=keys(people)).exclude(age_statement="")
    statements = count_by(stated, "person")
    if statements:
        stated.update(age_statement="")
    counts.update(statements)
    return counts


register(
    CONTACTS,
    subject=Subject.VISITOR,
    export=export_guardian_contacts,
    erase=Deletes.people(erase_guardian_contacts),
    module=__name__,
    rows=guardian_requests,
)
register(
    "child_protection_records",
    subject=Subject.VISITOR,
    export=export_records,
    erase=Deletes.people(erase_records),
    module=__name__,
    rows=child_records,
)


# --- whom an incident's notice reaches besides the child (piwarden.people.guardians) ---------

CHUNK = 500  # ids per IN (…): under every database's limit on parameters


class Guardians:
    """The minors are the persons marked as children (:class:`ChildMark`: a guardian was asked, or staff
    flagged the data); their guardians are those who consented through the e-mailed link (an address
    a guardian proved they read, which no other guardian request has)."""

    categories: Collection[str] = (CONTACTS,)

    def minors(self, person_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        ids = list(person_ids)
        found: set[uuid.UUID] = set()
        for start in range(0, len(ids), CHUNK):
            marked = ChildMark.objects.filter(person_id__in=ids[start : start + CHUNK])
            found.update(marked.values_list("person_id", flat=True))
        return found

    def addresses(self, permit: Permit) -> list[str]:
        consented = guardian_requests(permit.person).filter(status=GuardianRequestStatus.CONSENTED)
        return sorted({r.guardian_email for r in consented.order_by("created_at", "id") if r.guardian_email})


register_guardian_source(Guardians())
register(
    "child_sign_ups_awaiting_guardian",
    subject=Subject.NOBODY,
    export=Unattributable(AWAITING),
    erase=Unattributable(AWAITING),
    module=__name__,
)
