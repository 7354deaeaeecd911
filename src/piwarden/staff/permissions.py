"""Who among staff may do what: the one place where a declared role becomes a yes or a no.

Roles are declared in ``policy/declaration.toml`` (``[[roles]]``): which categories a role may
reveal and for which purposes, whether it reads the audit log, handles rights requests, sees
every consultation request or only those assigned to it, and assigns them.  Every view,
decorator, access function and write path asks here (:func:`may`, :func:`may_open_inquiry`,
:func:`may_reveal`, ...), and nothing else reads a role's grants or a staff member's groups to
decide: ``tests/staff/test_permissions.py`` reads the source and fails on another way in.

Two questions are asked of an account:

* :func:`staff_role` — the role of the staff member *making this request*: active staff, signed
  in with password and TOTP (django-otp's ``is_verified()``), holding a declared role;
* :func:`account_may` — whether *another* account (the one a request is assigned to) holds a role
  that may do something: active staff with a declared role; it is not signed in here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.db.models import IntegerField, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from piwarden.children.models import ChildMark
from piwarden.inquiries.models import CATEGORY as CONSULTATION  # a role that may reveal it handles requests
from piwarden.inquiries.models import Inquiry
from piwarden.policy.declaration import Role, load_declaration
from piwarden.prepared import Param, PreparedSelect
from piwarden.staff.models import AccessGrant


class Capability(StrEnum):
    """What a staff member may do, each read from the declared role."""

    SEE_INQUIRIES = "see_inquiries"  # open the inbox: the consultation requests in their scope
    SEE_ALL_INQUIRIES = "see_all_inquiries"  # every consultation request, not only their own
    ASSIGN_INQUIRIES = "assign_inquiries"  # give a consultation request to a staff member
    READ_AUDIT = "read_audit"  # read and export the audit log
    HANDLE_RIGHTS = "handle_rights"  # the rights-request queue and its actions
    TRACE_PROMISES = "trace_promises"  # the trace of the privacy texts' promises to code and tests
    MANAGE_STAFF = "manage_staff"  # the staff page: create, suspend, reactivate, change roles
    REQUEST_GRANTS = "request_grants"  # ask for a time-limited grant to reveal personal data
    APPROVE_GRANTS = "approve_grants"  # approve or decline another staff member's grant
    OPEN_GRANTS = "open_grants"  # the grants page: to ask or to decide
    REVIEW_ACCESS = "review_access"  # run access reviews: confirm or revoke each staff member's access
    RECORD_TRAINING = "record_training"  # record staff members' training attestations
    MONITOR_SECURITY = "monitor_security"  # the monitoring's alerts and the masked security events
    HANDLE_INCIDENTS = "handle_incidents"  # the incident register: record, report, notify, close
    SEE_CHILDREN_DATA = "see_children_data"  # a child's data (policy §八): hidden from every other role
    FLAG_CHILD_DATA = "flag_child_data"  # flag a child's data collected without a guardian's consent
    REVIEW_SECURITY_REFUSALS = "review_security_refusals"  # review refusals by the risk rules, lift or uphold
    PLACE_HOLDS = "place_holds"  # place and lift legal holds, which keep data past its retention
    MANAGE_DOWNLOADS = "manage_downloads"  # the downloadable resources: upload, edit, withdraw


def _granted(role: Role, capability: Capability) -> bool:
    if capability in _FLAGS:
        return bool(getattr(role, _FLAGS[capability]))
    sees = CONSULTATION in role.reveal_categories
    if capability is Capability.SEE_INQUIRIES:
        return sees
    if capability is Capability.SEE_ALL_INQUIRIES:
        return sees and role.all_inquiries
    if capability is Capability.ASSIGN_INQUIRIES:
        return sees and role.all_inquiries and role.assign_inquiries
    asks = any(role.grantable.values())
    if capability is Capability.REQUEST_GRANTS:
        return asks
    return role.approve_grants or asks  # OPEN_GRANTS: to ask or to decide


# The capabilities that are one flag of the declared role, of the same name.
_FLAGS = {
    c: c.value
    for c in (
        Capability.READ_AUDIT,
        Capability.HANDLE_RIGHTS,
        Capability.TRACE_PROMISES,
        Capability.MONITOR_SECURITY,
        Capability.REVIEW_SECURITY_REFUSALS,
        Capability.MANAGE_STAFF,
        Capability.APPROVE_GRANTS,
        Capability.REVIEW_ACCESS,
        Capability.RECORD_TRAINING,
        Capability.HANDLE_INCIDENTS,
        Capability.SEE_CHILDREN_DATA,
        Capability.FLAG_CHILD_DATA,
        Capability.PLACE_HOLDS,
        Capability.MANAGE_DOWNLOADS,
    )
}


def role_may(role: Role | None, capability: Capability) -> bool:
    """Whether a declared role (None: no role, or not signed in as staff) grants ``capability``."""
    return role is not None and _granted(role, capability)


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


# Every staff request asks: the statement compiled once per process (what ``user.groups`` reads).
_GROUP_NAMES = PreparedSelect(
    lambda: Group.objects.filter(user__id=Param("user", IntegerField())).values_list("name"), streamed=False
)


def declared_role(user: User) -> Role | None:
    """The role ``user``'s groups give them, signed in or not (for the periodic jobs)."""
    return _declared_role(user)


def _declared_role(user: User) -> Role | None:
    # The decorator, the view and the access function all ask within one request: one query.
    # The user object lives for one request, so the memo cannot outlive a change of groups.
    if not hasattr(user, "_piwarden_role"):
        declared = {r.id: r for r in load_declaration().roles}
        names = [name for (name,) in _GROUP_NAMES.rows(user=user.pk)]
        role = next((declared[n] for n in names if n in declared), None)
        user._piwarden_role = _with_grants(user, role)  # type: ignore[attr-defined]  # memo attribute
    found: Role | None = user._piwarden_role  # type: ignore[attr-defined]  # set just above
    return found


def _with_grants(user: User, role: Role | None) -> Role | None:
    """The role widened by the staff member's approved, unexpired grants.

    A grant is not a second way to decide a reveal: it adds its (category, purpose) to the role
    that every read path already asks (``reveal``, :func:`may_reveal`), for as long as it lasts.
    Only pairs the role still declares ``grantable`` count, so a change of role ends them too.
    """
    if role is None or not role.grantable:
        return role
    active = AccessGrant.objects.filter(
        requester=user, status=AccessGrant.Status.APPROVED, expires_at__gt=timezone.now(), person__isnull=True
    ).values_list("category", "purpose")
    reveal = {category: list(purposes) for category, purposes in role.reveal.items()}
    for category, purpose in active:
        if purpose in role.grantable.get(category, ()) and purpose not in reveal.setdefault(category, []):
            reveal[category].append(purpose)
    if reveal == role.reveal:
        return role
    # A grant covers its category's records, not only those assigned to the holder: an administrator
    # is assigned no consultation request, and the grant is what lets them open one.
    widened = {"reveal": reveal, "all_inquiries": role.all_inquiries or CONSULTATION in reveal}
    return role.model_copy(update=widened)


def active_grant_ids(user: AbstractBaseUser | AnonymousUser, categories: Iterable[str], purpose: str) -> list[int]:
    """The grants a reveal of ``categories`` for ``purpose`` rests on, for its audit event (none
    when the declared role itself allows it)."""
    role = staff_role(user)
    if role is None or not isinstance(user, User):
        return []
    declared = load_declaration().role(role.id)
    needed = [c for c in categories if not declared.may_reveal(c, purpose)]
    if not needed:
        return []
    return list(
        AccessGrant.objects.filter(
            requester=user,
            status=AccessGrant.Status.APPROVED,
            expires_at__gt=timezone.now(),
            category__in=needed,
            purpose=purpose,
            person__isnull=True,
        ).values_list("id", flat=True)
    )


def child_tickets(
    user: AbstractBaseUser | AnonymousUser, person_id: uuid.UUID, categories: Iterable[str], purpose: str
) -> list[AccessGrant] | None:
    """The approved, unexpired tickets (CHD-03) that let this staff member reveal ``categories`` of
    the child ``person_id`` for ``purpose``, one per category; None when a category has none.
    A ticket adds nothing to the role: the role must still be granted children's data and the
    category for the purpose (the caller asks :func:`may_reveal` too)."""
    if not isinstance(user, User) or not role_may(staff_role(user), Capability.SEE_CHILDREN_DATA):
        return None
    wanted = set(categories)
    found = {
        t.category: t
        for t in AccessGrant.objects.filter(
            requester=user,
            person_id=person_id,
            status=AccessGrant.Status.APPROVED,
            expires_at__gt=timezone.now(),
            category__in=wanted,
            purpose=purpose,
        ).order_by("expires_at")
    }
    return [found[c] for c in sorted(wanted)] if wanted and wanted <= found.keys() else None


def is_signed_in_staff(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Signed in with password and TOTP, active staff, with a declared role: may enter the console."""
    return staff_role(user) is not None


def may(user: AbstractBaseUser | AnonymousUser, capability: Capability) -> bool:
    """Whether the staff member making this request may do ``capability``."""
    return role_may(staff_role(user), capability)


def roles_with(capability: Capability) -> list[str]:
    """The ids of the declared roles that grant ``capability`` (declaration order)."""
    return [r.id for r in load_declaration().roles if _granted(r, capability)]


def accounts_that_may(capability: Capability) -> QuerySet[User]:
    """Active staff accounts holding a role that grants ``capability`` (to choose an assignee from)."""
    return (
        User.objects.filter(is_active=True, is_staff=True, groups__name__in=roles_with(capability))
        .distinct()
        .order_by("username")
    )


def holds_role_that_may(user: User, capability: Capability) -> bool:
    """Whether the account holds a role granting ``capability``, active or suspended."""
    return user.groups.filter(name__in=roles_with(capability)).exists()


def account_may(user: User, capability: Capability) -> bool:
    """Whether an account (not necessarily the one signed in) holds a role that grants ``capability``."""
    return accounts_that_may(capability).filter(pk=user.pk).exists()


# --- object level -------------------------------------------------------------------------------


def inquiries_in_scope(user: AbstractBaseUser | AnonymousUser, inquiries: QuerySet[Inquiry]) -> QuerySet[Inquiry]:
    """The consultation requests of ``inquiries`` this staff member may open: all of them for a role
    that sees every request, those assigned to them for the others, none without the role."""
    role = staff_role(user)
    if not role_may(role, Capability.SEE_CHILDREN_DATA):
        # A child's requests (policy §八, CHD-03): only for the roles granted children's data.
        inquiries = inquiries.exclude(person__child_mark__isnull=False)
    if role_may(role, Capability.SEE_ALL_INQUIRIES):
        return inquiries
    if role_may(role, Capability.SEE_INQUIRIES) and isinstance(user, User):
        return inquiries.filter(assigned_to=user)
    return inquiries.none()


def may_open_inquiry(user: AbstractBaseUser | AnonymousUser, inquiry: Inquiry) -> bool:
    """Whether this staff member may open this one consultation request (masked)."""
    role = staff_role(user)
    if not role_may(role, Capability.SEE_CHILDREN_DATA) and is_childs(inquiry):
        return False
    if role_may(role, Capability.SEE_ALL_INQUIRIES):
        return True
    return role_may(role, Capability.SEE_INQUIRIES) and isinstance(user, User) and inquiry.assigned_to_id == user.pk


def is_childs(inquiry: Inquiry) -> bool:
    """Whether the consultation request is a child's (its person marked so, ``children.models``)."""
    return ChildMark.objects.filter(person_id=inquiry.person_id).exists()


# --- revealing personal data --------------------------------------------------------------------


def reveals_personal_data(role: Role | None) -> bool:
    """Whether the role may reveal any category at all (and so needs a current training)."""
    return role is not None and bool(role.reveal_categories)


def may_see_category(role: Role | None, category: str) -> bool:
    """Whether the role may reveal ``category`` for at least one purpose."""
    return role is not None and category in role.reveal_categories


def may_reveal(role: Role | None, category: str, purpose: str) -> bool:
    """Whether the role may reveal ``category`` for ``purpose`` (the declared grant)."""
    return role is not None and role.may_reveal(category, purpose)


def reveal_purposes(role: Role | None, categories: list[str] | set[str] | tuple[str, ...]) -> list[str]:
    """The purposes the role may reveal every one of ``categories`` for (declaration order)."""
    return [] if role is None else role.purposes_for(categories)


class StaffPermissions:
    """What the signed-in staff member may do, for templates: ``{% if may.read_audit %}``.

    Asked lazily, from the request: a page that never looks reads neither the session nor the
    database (a public page must not vary by cookie).  A page drawn before the authentication
    middleware ran (an early error page) has no user, and no permission.
    """

    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    def __getattr__(self, name: str) -> bool:
        try:
            capability = Capability(name)
        except ValueError:
            raise AttributeError(name) from None
        user = getattr(self._request, "user", None)
        return user is not None and may(user, capability)
