"""What the rights app stores about a person, exported and erased (``piwarden.people.registry``).

* ``rights_requests``: what the person wrote in each request (the e-mail given, the details),
  our answers (the result or the refusal's reasons, an extension's explanation, each step's
  note), decrypted; and the one-time codes still waiting to be e-mailed (never exported: a code
  is a key to the request, not data about the person).  Erasure is :class:`Shredded`: the
  values are sealed under the person's data key, which the erasure destroys, so they become
  unreadable where they lie; the rows stay, because:
* ``rights_request_records``: the kind, state and dates of each request and of its steps are
  :class:`Keeps`: they are the proof that a request (the erasure request among them) was received
  and answered on time, with the reasons of a refusal (PIPL 50); they hold no value of the
  person's, and they are deleted three years after the request closed, as declared.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from piwarden.people.models import Person
from piwarden.people.registry import Keeps, Record, Shredded, Subject, register
from piwarden.processing.gate import Permit
from piwarden.rights.models import RightsRequest

CHUNK = 200  # rows per database round trip when streaming


def _requests(person: Person) -> QuerySet[RightsRequest]:
    return RightsRequest.objects.filter(person=person).order_by("submitted_at", "id")


def _day(value: object) -> str | None:
    return value.isoformat() if value is not None else None  # type: ignore[attr-defined]  # date or datetime


def export_requests(permit: Permit) -> Iterator[Record]:
    for request in _requests(permit.person).prefetch_related("steps").iterator(chunk_size=CHUNK):
        yield {
            "reference": request.reference,
            "email": request.email,
            "details": request.details,
            "extension_reason": request.extension_reason,
            "outcome": request.outcome,
            "notes": [{"at": step.at.isoformat(), "note": step.note} for step in request.steps.all() if step.note],
        }


def export_records(permit: Permit) -> Iterator[Record]:
    for request in _requests(permit.person).prefetch_related("steps").iterator(chunk_size=CHUNK):
        yield {
            "reference": request.reference,
            "kind": request.kind,
            "acting_as": request.acting_as,
            "status": request.status,
            "language": request.language,
            "submitted_at": _day(request.submitted_at),
            "verified_at": _day(request.verified_at),
            "received_on": _day(request.received_on),
            "due_on": _day(request.due_on),
            "due_provisional": request.due_provisional,
            "extended_due_on": _day(request.extended_due_on),
            "decided_at": _day(request.decided_at),
            "refusal_ground": request.refusal_ground,
            "completed_at": _day(request.completed_at),
            "receipt_sent_at": _day(request.receipt_sent_at),
            "steps": [{"at": step.at.isoformat(), "status": step.status} for step in request.steps.all()],
        }


register(
    "rights_requests",
    subject=Subject.VISITOR,
    export=export_requests,
    erase=Shredded(
        gettext_noop(
            "What you wrote in your requests and our answers are sealed under your data key, which is destroyed: "
            "they become unreadable; the request rows stay as proof that they were answered."
        )
    ),
    module=__name__,
)
register(
    "rights_request_records",
    subject=Subject.VISITOR,
    export=export_records,
    erase=Keeps(
        gettext_noop(
            "The kind, state and dates of your requests are the proof that we received and answered them (PIPL 50), "
            "this erasure among them; they hold none of your values and are deleted three years after closing."
        )
    ),
    module=__name__,
)
