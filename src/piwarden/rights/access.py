"""The person's own read of a request: what the status page shows, through the gate."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.db.models import Case, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.people.models import Person
from piwarden.processing import gate
from piwarden.rights import clock
from piwarden.rights.models import OPEN_STATUSES, RequestStatus, RightsRequest
from piwarden.staff import permissions
from piwarden.staff.access import actor_of, refuse_opening
from piwarden.staff.permissions import Capability
from piwarden.staff.training import training_lapse

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


# --- rights-queue: the staff read path of rights requests (issue 7 §3) ----------------------
#
# Staff who handle rights requests hold a role declaring ``handle_rights`` (policy/declaration.toml
# [[roles]]).  The queue lists plain columns only (reference, kind, state, dates): nothing is
# decrypted.  What the person wrote is revealed field by field, with a reason, through the gate,
# and recorded, as the consultation inbox does (:mod:`piwarden.inquiries.access`).  Every refusal
# is committed on its own before the caller hears of it: call these outside any transaction.

STAFF_PAGE_SIZE = 50
# What the person wrote, and our answers to them (they may quote the person's data): each shown only
# when revealed; the console's timeline shows the steps' states and dates, never their notes.
# A proposed refusal's reasons and a rejection's note are staff's words about the request: sealed and
# revealed the same way (the second staff member reads the proposal; the proposer, why it was rejected).
REVEALABLE = ("email", "details", "outcome", "extension_reason", "proposed_reasons", "rejection_note")
MIN_REVEAL_REASON, MAX_REVEAL_REASON = 10, 200


class StaffRefused(Exception):
    """A staff member may not do this: the message in their language; ``status`` for HTTP."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def refuse_action(user: AbstractBaseUser | AnonymousUser, action: str, refusal: str, reference: str = "") -> None:
    """Record a refused staff action on a rights request (committed on its own)."""
    with transaction.atomic(durable=True):
        record_event(
            EventType.RIGHTS_ACTION_REFUSED,
            actor=actor_of(user),
            extra={"action": action[:40], "request": reference[:20], "refusal": refusal},
        )


def require_handler(user: AbstractBaseUser | AnonymousUser, action: str, reference: str = "") -> User:
    """The staff member, if their role handles rights requests; else the refusal is recorded and raised."""
    if not permissions.may(user, Capability.HANDLE_RIGHTS) or not isinstance(user, User):
        refuse_action(user, action, gettext_noop("the role does not handle rights requests"), reference)
        raise StaffRefused(_("Your role does not handle rights requests."))
    return user


@dataclass(frozen=True)
class QueueFilter:
    """What the queue may be narrowed by: plain columns only."""

    status: str = ""
    kind: str = ""
    mine: bool = False


def list_requests_for_staff(
    user: AbstractBaseUser | AnonymousUser, filters: QueueFilter | None = None
) -> QuerySet[RightsRequest]:
    """Verified requests, the open ones first, each by the date its answer is due; nothing decrypted."""
    if not permissions.may(user, Capability.HANDLE_RIGHTS):
        refuse_opening(user, "rights_queue", gettext_noop("the role does not handle rights requests"))
    filters = filters or QueueFilter()
    rows = (
        RightsRequest.objects.exclude(status=RequestStatus.AWAITING_VERIFICATION)
        .only(*QUEUE_COLUMNS)
        .select_related("assigned_to")
        .annotate(
            answer_due=Coalesce("extended_due_on", "due_on"),
            closed=Case(When(status__in=OPEN_STATUSES, then=Value(0)), default=Value(1)),
        )
        .order_by("closed", "answer_due", "submitted_at", "id")  # open ones first, the earliest due first
    )
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.mine:
        rows = rows.filter(assigned_to=actor_of(user))
    return rows


QUEUE_COLUMNS = (
    "id",
    "reference",
    "kind",
    "status",
    "acting_as",
    "person_id",
    "submitted_at",
    "received_on",
    "due_on",
    "due_provisional",
    "extended_due_on",
    "assigned_to",
    "refusal_proposed_at",
    "escalated_at",
    "completed_at",
)


def access_request_for_staff(user: AbstractBaseUser | AnonymousUser, reference: str) -> RightsRequest:
    """One verified request, masked; 404 for a role that does not handle rights requests."""
    if not permissions.may(user, Capability.HANDLE_RIGHTS):
        refuse_opening(user, "rights_request", gettext_noop("the role does not handle rights requests"))
    found = (
        RightsRequest.objects.exclude(status=RequestStatus.AWAITING_VERIFICATION)
        .select_related("person", "assigned_to", "approved_by", "refusal_proposed_by", "refusal_rejected_by")
        .filter(reference=reference)
        .first()
    )
    if found is None:
        raise Http404
    return found


def reveal_request_fields(
    user: AbstractBaseUser | AnonymousUser, request: RightsRequest, *, fields: list[str], reason: str
) -> dict[str, str | None]:
    """Decrypt what the person wrote, for the staff member handling the request; audited.

    The role must handle rights requests and be granted ``rights_requests`` for
    ``answer_rights_request``; the gate is asked and records the use.  Refusals are recorded.
    """
    chosen = [f for f in dict.fromkeys(fields) if f in REVEALABLE]
    reason = reason.strip()
    role = permissions.staff_role(user)
    refusal = None
    if not permissions.role_may(role, Capability.HANDLE_RIGHTS) or not permissions.may_reveal(
        role, "rights_requests", PURPOSE
    ):
        refusal = (gettext_noop("the role may not reveal rights requests"), _("Your role may not reveal this."), 403)
    elif (lapse := training_lapse(actor_of(user), role)) is not None:
        refusal = (lapse.code, lapse.message(), 403)
    elif not chosen or len(chosen) != len(fields):
        refusal = (gettext_noop("unknown field"), _("Choose at least one field to reveal."), 400)
    elif not MIN_REVEAL_REASON <= len(reason) <= MAX_REVEAL_REASON:
        refusal = (gettext_noop("reason too short"), _("Give a reason of at least 10 characters."), 400)
    if refusal is not None:
        with transaction.atomic(durable=True):
            record_event(
                EventType.PII_REVEAL_REFUSED,
                actor=actor_of(user),
                person=request.person,
                purpose=PURPOSE,
                fields=[f[:40] for f in fields[:5]],
                reason=reason[:MAX_REVEAL_REASON],
                extra={"request": request.reference, "refusal": refusal[0]},
            )
        raise StaffRefused(refusal[1], status=refusal[2])
    use = gate.Use(
        context="staff.reveal",
        actor=actor_of(user),
        fields=chosen,
        stated_reason=reason,
        refused_event=EventType.PII_REVEAL_REFUSED,
        extra={"request": request.reference},
    )
    try:
        with gate.processing(request.person, PURPOSE, categories={"rights_requests"}, use=use):
            current = RightsRequest.objects.get(pk=request.pk)
            values = {f: getattr(current, f) for f in chosen}
            record_event(
                EventType.PII_REVEALED,
                actor=actor_of(user),
                person=request.person,
                purpose=PURPOSE,
                fields=chosen,
                reason=reason,
                # Named as the consultation's reveals name theirs: access reviews count by category.
                extra={"request": request.reference, "categories": ["rights_requests"]},
            )
    except gate.ProcessingRefused as refused:
        raise StaffRefused(
            _("The processing gate refused: %(reason)s.") % {"reason": _(refused.decision.reason)}
        ) from None
    return values


@dataclass(frozen=True)
class StaffStep:
    at: datetime
    status: RequestStatus
    mailed: bool  # the person was e-mailed this step


def timeline_for_staff(user: AbstractBaseUser | AnonymousUser, request: RightsRequest) -> tuple[StaffStep, ...]:
    """The steps the person sees, as states and dates: the notes stay sealed (revealed on demand)."""
    require_handler(user, "read_timeline", request.reference)
    steps = request.steps.only("at", "status", "mailed_at").order_by("at", "id")
    return tuple(StaffStep(s.at, RequestStatus(s.status), s.mailed_at is not None) for s in steps)
