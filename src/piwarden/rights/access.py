"""The person's own read of a request: what the status page shows, through the gate."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from django.utils import timezone

from piwarden.audit.log import ActorKind
from piwarden.people.models import Person
from piwarden.processing import gate
from piwarden.rights import clock
from piwarden.rights.models import RequestStatus, RightsRequest

PURPOSE = "answer_rights_request"
CATEGORIES = frozenset({"rights_requests", "rights_request_records"})


@dataclass(frozen=True)
class Step:
    at: datetime
    status: RequestStatus
    note: str


@dataclass(frozen=True)
class RequestStatusView:
    """One request as its requester sees it: no other person's data, nothing staff-only."""

    request: RightsRequest  # its plain fields (reference, kind, status, dates) only
    details: str
    outcome: str
    extension_reason: str
    steps: tuple[Step, ...]
    due_on: date | None  # the date the answer is due now (the extended one once extended)
    provisional: bool
    working_days_left: int | None  # None once answered or before verification
    overdue: bool


def read_status(request_id: uuid.UUID | str) -> RequestStatusView | None:
    """The request with this id as its requester may see it; None if it no longer exists.

    A read of the person's data (what they wrote, our answers): the gate is asked for
    ``answer_rights_request`` and records the use.  A crypto-shredded request shows no values.
    """
    try:
        request = RightsRequest.objects.get(pk=request_id)
    except (RightsRequest.DoesNotExist, ValueError):
        return None
    use = gate.Use("rights.status_page", actor_kind=ActorKind.VISITOR, extra={"request": request.reference})
    person = functools.partial(Person.objects.get, pk=request.person_id)
    try:
        with gate.processing(person, PURPOSE, categories=CATEGORIES, use=use):
            steps = tuple(Step(s.at, RequestStatus(s.status), s.note or "") for s in request.steps.all())
            details, outcome = request.details or "", request.outcome or ""
            extension_reason = request.extension_reason or ""
    except gate.ProcessingRefused:
        return None  # erased: nothing to show
    due = request.answer_due_on
    calendar = clock.load_calendar()
    # An extended date is one staff chose and told the person: not a count, so not provisional.
    provisional = request.due_provisional and request.extended_due_on is None
    left = None
    today = clock.day_of_receipt(timezone.now())
    if due is not None and request.is_open:
        left = clock.working_days_left(due, today, calendar)
    return RequestStatusView(
        request=request,
        details=details,
        outcome=outcome,
        extension_reason=extension_reason,
        steps=steps,
        due_on=due,
        provisional=provisional,
        working_days_left=left,
        overdue=due is not None and request.is_open and today > due,
    )
