"""Staff roles and what a role may open: the staff side of every staff read path.

Roles come from the declaration (``[[roles]]``): which purposes a role may reveal each
category for, and whether it may read the audit log.  The read paths of each kind of data
live with that data (Zulip's ``access_*_by_*`` functions beside their models), for example
:mod:`piwarden.inquiries.access`; they ask :func:`staff_role` here and record a refused opening
through :func:`refuse_opening`.  The audit log's own read path is here, for now.

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
from piwarden.policy.declaration import Role, load_declaration
from piwarden.staff.models import AccessReview, AccessReviewLine

AUDIT_PAGE_SIZE = 50
MAX_EXPORT = 5000  # events in one export of the audit log with its proof


def staff_role(user: AbstractBaseUser | AnonymousUser) -> Role | None:
    """The declared role of a signed-in, verified staff member, or None."""
    if not isinstance(user, User):
        return None
    if not user.is_active or not user.is_staff:
        return None
    # django_otp's OTPMiddleware adds is_verified(); a user loaded any other way has not
    # passed the second factor in this request.
    is_verified = getattr(user, "is_verified", None)
    if not callable(is_verified) or not is_verified():
        return None
    return _declared_role(user)


def declared_role(user: User) -> Role | None:
    """The role ``user``'s groups give them, signed in or not (for the periodic jobs)."""
    return _declared_role(user)


def _declared_role(user: User) -> Role | None:
    # The decorator, the view and the access function all ask within one request: one query.
    # The user object lives for one request, so the memo cannot outlive a change of groups.
    if not hasattr(user, "_piwarden_role"):
        declared = {r.id: r for r in load_declaration().roles}
        names = user.groups.values_list("name", flat=True)
        user._piwarden_role = next((declared[n] for n in names if n in declared), None)  # type: ignore[attr-defined]  # memo attribute
    role: Role | None = user._piwarden_role  # type: ignore[attr-defined]  # set just above
    return role


def can_read_audit(role: Role | None) -> bool:
    return role is not None and role.read_audit


def can_review_access(role: Role | None) -> bool:
    return role is not None and role.review_access


def can_record_training(role: Role | None) -> bool:
    return role is not None and role.record_training


def actor_of(user: AbstractBaseUser | AnonymousUser) -> User | None:
    return user if isinstance(user, User) else None


def refuse_opening(user: AbstractBaseUser | AnonymousUser, page: str, refusal: str) -> NoReturn:
    """Record a refused opening (committed on its own), then answer as if nothing were there."""
    with transaction.atomic(durable=True):
        record_event(EventType.STAFF_ACCESS_REFUSED, actor=actor_of(user), extra={"page": page, "refusal": refusal})
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
    if not can_read_audit(staff_role(user)):
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


def export_audit_log(user: AbstractBaseUser | AnonymousUser, narrowed: AuditFilter) -> list[AuditEvent]:
    """The events the filter selects, oldest first, for an export with its proof; the export is
    recorded (with the filter and the count) before anything is returned."""
    if not can_read_audit(staff_role(user)):
        refuse_opening(user, "audit export", gettext_noop("the role may not read the audit log"))
    events = list(narrowed.apply(AuditEvent.objects.select_related("actor", "person")).order_by("id")[: MAX_EXPORT + 1])
    if len(events) > MAX_EXPORT:
        raise TooManyToExport
    with transaction.atomic(durable=True):
        extra: dict[str, object] = {"filter": narrowed.describe(), "events": len(events)}
        record_event(EventType.AUDIT_EXPORTED, actor=actor_of(user), extra=extra)
    return events


def list_reviews_for_staff(user: AbstractBaseUser | AnonymousUser) -> QuerySet[AccessReview]:
    """The access reviews, newest first, for a role that runs them; refused openings recorded."""
    if not can_review_access(staff_role(user)):
        refuse_opening(user, "access reviews", gettext_noop("the role does not run access reviews"))
    return AccessReview.objects.select_related("opened_by").order_by("-opened_at", "-id")


def access_review_for_staff(user: AbstractBaseUser | AnonymousUser, review_id: int) -> AccessReview:
    if not can_review_access(staff_role(user)):
        refuse_opening(user, "access review", gettext_noop("the role does not run access reviews"))
    found = AccessReview.objects.filter(pk=review_id).first()
    if found is None:
        raise Http404
    return found


def access_review_line_for_staff(user: AbstractBaseUser | AnonymousUser, review: AccessReview, line_id: int) -> int:
    """The id of a line of ``review`` (404 for a line of another campaign, or none)."""
    if not can_review_access(staff_role(user)):
        refuse_opening(user, "access review", gettext_noop("the role does not run access reviews"))
    if not AccessReviewLine.objects.filter(pk=line_id, review=review).exists():
        raise Http404
    return line_id


def training_staff_for_staff(user: AbstractBaseUser | AnonymousUser) -> QuerySet[User]:
    """The active staff, for the training page of a role that records training."""
    if not can_record_training(staff_role(user)):
        refuse_opening(user, "training", gettext_noop("the role does not record training"))
    return User.objects.filter(is_staff=True, is_active=True).prefetch_related("groups").order_by("username")
