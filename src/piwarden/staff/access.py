"""The staff side of every staff read path: a refused opening, recorded; the audit log's read path.

What a role may do is decided in :mod:`piwarden.staff.permissions` alone.  The read paths of
each kind of data live with that data (Zulip's ``access_*_by_*`` functions beside their
models), for example :mod:`piwarden.inquiries.access`; they ask the permissions module and
record a refused opening through :func:`refuse_opening`.  The audit log's own read path is
here, for now.

Every refusal is recorded in a transaction of its own, committed before the caller hears of
it: these functions must run outside any transaction (they open durable ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_noop

from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditEvent
from piwarden.children.models import ChildMark
from piwarden.staff.models import AccessGrant, AccessReview, AccessReviewLine
from piwarden.staff.permissions import Capability, may

AUDIT_PAGE_SIZE = 50
MAX_EXPORT = 5000  # events in one export of the audit log with its proof


def actor_of(user: AbstractBaseUser | AnonymousUser) -> User | None:
    return user if isinstance(user, User) else None


def record_refusal(user: AbstractBaseUser | AnonymousUser, page: str, refusal: str, *, about: str = "") -> None:
    """Record a refused opening or action (committed on its own, before the caller hears of it).

    ``about`` names the object asked for (a reference, never a personal value), when there is one.
    """
    extra = {"page": page, "refusal": refusal} | ({"about": about[:40]} if about else {})
    with transaction.atomic(durable=True):
        record_event(EventType.STAFF_ACCESS_REFUSED, actor=actor_of(user), extra=extra)


def refuse_opening(user: AbstractBaseUser | AnonymousUser, page: str, refusal: str, *, about: str = "") -> NoReturn:
    """Record a refused opening, then answer as if nothing were there."""
    record_refusal(user, page, refusal, about=about)
    raise Http404


@dataclass(frozen=True)
class AuditFilter:
    """What the security auditor narrows the log to: columns that hold no personal value (a
    person by the reference the log shows, a staff member, an event type, days)."""

    person: str = ""  # Person.reference: the last 10 hex digits of the person's random id
    staff: User | None = None
    event_type: str = ""
    occurred_from: datetime | None = None  # inclusive
    occurred_before: datetime | None = None  # exclusive

    def describe(self) -> dict[str, str]:
        """The filter as the viewing's audit event records it."""
        shown = {
            "person": self.person,
            "staff": str(self.staff.pk) if self.staff is not None else "",
            "event_type": self.event_type,
            "from": self.occurred_from.isoformat() if self.occurred_from else "",
            "before": self.occurred_before.isoformat() if self.occurred_before else "",
        }
        return {k: v for k, v in shown.items() if v}

    def apply(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        if self.person:
            events = events.filter(person__id__iendswith=self.person)
        if self.staff is not None:
            events = events.filter(actor=self.staff)
        if self.event_type:
            events = events.filter(event_type=self.event_type)
        if self.occurred_from is not None:
            events = events.filter(occurred_at__gte=self.occurred_from)
        if self.occurred_before is not None:
            events = events.filter(occurred_at__lt=self.occurred_before)
        return events


def open_audit_log(
    user: AbstractBaseUser | AnonymousUser, *, page: str, narrowed: AuditFilter | None = None
) -> QuerySet[AuditEvent]:
    """The log, newest first, narrowed by ``narrowed``, for a role that reads it; the opening
    (and the filter) is recorded either way.

    The viewing is written before the caller pages through the result: the paginator is lazy,
    and a page counted before this write but read after it would silently drop its last row.
    """
    narrowed = narrowed or AuditFilter()
    if not may(user, Capability.READ_AUDIT):
        refuse_opening(user, "audit", gettext_noop("the role may not read the audit log"))
    with transaction.atomic(durable=True):
        extra: dict[str, object] = {"page": page[:10]}
        if described := narrowed.describe():
            extra["filter"] = described
        record_event(EventType.AUDIT_VIEWED, actor=actor_of(user), extra=extra)
    events = AuditEvent.objects.select_related("actor", "person").order_by("-id")  # seq is set later, by the sealer
    return narrowed.apply(events)  # seq is set later, by the sealer


class TooManyToExport(Exception):
    """The filter selects more events than one export holds (``proof.MAX_EVENTS``)."""


class ChildrenInBulkExport(Exception):
    """The selection holds entries about a child's data and is not narrowed to one person (CHD-03)."""


def export_audit_log(user: AbstractBaseUser | AnonymousUser, narrowed: AuditFilter) -> list[AuditEvent]:
    """The events the filter selects, oldest first, for an export with its proof; the export is
    recorded (with the filter and the count) before anything is returned.

    Children's records are not exported in bulk (policy §八, CHD-03): a selection that holds
    entries about a person marked as a child is refused, recorded, unless the filter names that
    one person (:class:`ChildrenInBulkExport`)."""
    if not may(user, Capability.READ_AUDIT):
        refuse_opening(user, "audit export", gettext_noop("the role may not read the audit log"))
    events = list(narrowed.apply(AuditEvent.objects.select_related("actor", "person")).order_by("id")[: MAX_EXPORT + 1])
    if len(events) > MAX_EXPORT:
        raise TooManyToExport
    persons = {e.person_id for e in events if e.person_id is not None}
    if not narrowed.person and ChildMark.objects.filter(person_id__in=persons).exists():
        record_refusal(user, "audit export", gettext_noop("bulk export of entries about children's data"))
        raise ChildrenInBulkExport
    with transaction.atomic(durable=True):
        extra: dict[str, object] = {"filter": narrowed.describe(), "events": len(events)}
        record_event(EventType.AUDIT_EXPORTED, actor=actor_of(user), extra=extra)
    return events


# --- the administrator's staff page and the grants page (issue 8 §2) ----------------------


def list_staff(user: AbstractBaseUser | AnonymousUser) -> QuerySet[User]:
    """Every staff account, with its groups, authenticators and deactivation date, for a role that manages staff."""
    if not may(user, Capability.MANAGE_STAFF):
        refuse_opening(user, "staff", gettext_noop("the role may not manage staff"))
    return (
        User.objects.filter(is_staff=True)
        .select_related("deactivation")
        .prefetch_related("groups", "authenticator_set")
        .order_by("username")
    )


@dataclass(frozen=True)
class GrantsView:
    """What the grants page shows: one's own requests and grants, and those awaiting a decision."""

    own: list[AccessGrant]
    to_decide: list[AccessGrant]
    decided: list[AccessGrant]


RECENT_GRANTS = 50


def open_grants(user: AbstractBaseUser | AnonymousUser) -> GrantsView:
    """For a role that may ask for grants, or decide them; others get the refused opening."""
    asks, decides = may(user, Capability.REQUEST_GRANTS), may(user, Capability.APPROVE_GRANTS)
    if not (asks or decides) or not isinstance(user, User):
        refuse_opening(user, "grants", gettext_noop("the role may neither ask for nor decide grants"))
    rows = AccessGrant.objects.select_related("requester", "decided_by").order_by("-requested_at", "-id")
    own = list(rows.filter(requester=user)[:RECENT_GRANTS]) if asks else []
    to_decide = list(rows.filter(status=AccessGrant.Status.REQUESTED).exclude(requester=user)) if decides else []
    decided = list(rows.filter(decided_by=user)[:RECENT_GRANTS]) if decides else []
    return GrantsView(own=own, to_decide=to_decide, decided=decided)


def list_reviews_for_staff(user: AbstractBaseUser | AnonymousUser) -> QuerySet[AccessReview]:
    """The access reviews, newest first, for a role that runs them; refused openings recorded."""
    if not may(user, Capability.REVIEW_ACCESS):
        refuse_opening(user, "access reviews", gettext_noop("the role does not run access reviews"))
    return AccessReview.objects.select_related("opened_by").order_by("-opened_at", "-id")


def access_review_for_staff(user: AbstractBaseUser | AnonymousUser, review_id: int) -> AccessReview:
    if not may(user, Capability.REVIEW_ACCESS):
        refuse_opening(user, "access review", gettext_noop("the role does not run access reviews"))
    found = AccessReview.objects.filter(pk=review_id).first()
    if found is None:
        raise Http404
    return found


def access_review_line_for_staff(user: AbstractBaseUser | AnonymousUser, review: AccessReview, line_id: int) -> int:
    """The id of a line of ``review`` (404 for a line of another campaign, or none)."""
    if not may(user, Capability.REVIEW_ACCESS):
        refuse_opening(user, "access review", gettext_noop("the role does not run access reviews"))
    if not AccessReviewLine.objects.filter(pk=line_id, review=review).exists():
        raise Http404
    return line_id


def training_staff_for_staff(user: AbstractBaseUser | AnonymousUser) -> QuerySet[User]:
    """The active staff, for the training page of a role that records training."""
    if not may(user, Capability.RECORD_TRAINING):
        refuse_opening(user, "training", gettext_noop("the role does not record training"))
    return User.objects.filter(is_staff=True, is_active=True).prefetch_related("groups").order_by("username")
