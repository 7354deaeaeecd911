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

from typing import NoReturn

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_noop

from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditEvent
from piwarden.policy.declaration import Role, load_declaration

AUDIT_PAGE_SIZE = 50


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


def actor_of(user: AbstractBaseUser | AnonymousUser) -> User | None:
    return user if isinstance(user, User) else None


def refuse_opening(user: AbstractBaseUser | AnonymousUser, page: str, refusal: str) -> NoReturn:
    """Record a refused opening (committed on its own), then answer as if nothing were there."""
    with transaction.atomic(durable=True):
        record_event(EventType.STAFF_ACCESS_REFUSED, actor=actor_of(user), extra={"page": page, "refusal": refusal})
    raise Http404


def open_audit_log(user: AbstractBaseUser | AnonymousUser, *, page: str) -> QuerySet[AuditEvent]:
    """The whole log, newest first, for a role that reads it; the opening is recorded either way.

    The viewing is written before the caller pages through the result: the paginator is lazy,
    and a page counted before this write but read after it would silently drop its last row.
    """
    if not can_read_audit(staff_role(user)):
        refuse_opening(user, "audit", gettext_noop("the role may not read the audit log"))
    with transaction.atomic(durable=True):
        record_event(EventType.AUDIT_VIEWED, actor=actor_of(user), extra={"page": page[:10]})
    return AuditEvent.objects.select_related("actor", "person").order_by("-id")  # seq is set later, by the sealer
