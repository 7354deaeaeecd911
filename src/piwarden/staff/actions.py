"""Write paths for staff accounts and sessions.

Each function here is an entry point (Zulip's ``do_*``): it opens its own durable transaction,
so it cannot be nested in a caller's by mistake, changes the state and writes its audit event
in that transaction.  Views and commands call one of them and keep only their interface.
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.http import urlsafe_base64_decode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from piwarden.audit.log import EventType, record_event
from piwarden.people.models import Person
from piwarden.policy.declaration import Role, load_declaration
from piwarden.prepared import prepare_enqueue
from piwarden.staff import devices, reviews, training
from piwarden.staff.access import refuse_opening
from piwarden.staff.mail import enrolment_tokens
from piwarden.staff.models import (
    MAX_GRANT_HOURS,
    AccessGrant,
    AccessReview,
    AccessReviewLine,
    Authenticator,
    Deactivation,
    Decision,
    KnownDevice,
    StaffPreference,
    TrainingNotice,
    TrainingRecord,
)
from piwarden.staff.permissions import (
    Capability,
    accounts_that_may,
    declared_role,
    holds_role_that_may,
    may_reveal,
    role_may,
    roles_with,
    staff_role,
)
from piwarden.staff.personal_data import deactivate, delete_sessions
from piwarden.staff.tasks import (
    send_enrolment_mail,
    send_new_device_mail,
    send_review_opened_mail,
    send_training_notice_mail,
)
from piwarden.vault.keys import VaultUnavailable

logger = logging.getLogger("piwarden.staff")

# The session key holding when the staff member signed in (seconds since the epoch): the
# absolute limit (PIWARDEN_STAFF_MAX_SESSION_SECONDS) counts from it.
SIGNED_IN_AT = "piwarden_signed_in_at"


@dataclass(frozen=True)
class NewStaff:
    user: User
    authenticator: Authenticator


@transaction.atomic(durable=True)
def create_staff(*, username: str, email: str, password: str, role: str) -> NewStaff:
    """A staff account with one role and one confirmed TOTP authenticator (secret encrypted)."""
    user = User.objects.create_user(username, email, password, is_staff=True)
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    authenticator = Authenticator.enrol(user)
    record_event(EventType.STAFF_CREATED, extra={"username": username, "role": role})
    return NewStaff(user=user, authenticator=authenticator)


@transaction.atomic(durable=True)
def set_console_language(user: User, language: str) -> None:
    """Remember the staff member's console language ('' goes back to following the browser)."""
    if language and language not in dict(settings.LANGUAGES):
        raise ValueError(f"not a language of this site: {language!r}")
    StaffPreference.objects.update_or_create(user=user, defaults={"language": language})
    record_event(EventType.STAFF_LANGUAGE_SET, actor=user, extra={"language": language or "browser"})


@dataclass(frozen=True)
class SignedIn:
    new_device: bool
    device_token: str | None  # a new device cookie for the response to set, when the browser had none


@transaction.atomic(durable=True)
def change_staff_password(user: User, password: str) -> None:
    """Give a staff member a new password (already validated by the caller).

    Every session of theirs ends with it: Django keeps a digest of the password hash in each
    session and signs out a session whose digest no longer matches.  The event names the account
    and who is recorded as acting (the operator's command has no staff actor).
    """
    user.set_password(password)
    user.save(update_fields=["password"])
    record_event(EventType.STAFF_PASSWORD_CHANGED, extra={"username": user.get_username()})


@transaction.atomic(durable=True)
def sign_in_staff(request: HttpRequest, user: User) -> SignedIn:
    """Start the session of a staff member whose password and code the sign-in form accepted.

    The session (with the time it started, for the 12-hour limit), the last-login time and the
    ``staff.signed_in`` event commit together: no session exists that the log does not show.  A
    browser this account never signed in from (its device cookie's keyed hash unknown for the
    account) is recorded as a new device, with ``staff.new_device`` and an e-mail to the staff
    member queued in the same transaction.
    """
    login(request, user)
    request.session[SIGNED_IN_AT] = int(time.time())
    record_event(EventType.STAFF_SIGNED_IN, actor=user)
    presented = devices.presented(request)
    token = presented or devices.new_token()
    now = timezone.now()
    digest = devices.digest(token)
    if KnownDevice.objects.filter(user=user, digest=digest).update(last_seen_at=now):
        return SignedIn(new_device=False, device_token=None)
    device = KnownDevice.objects.create(user=user, digest=digest, first_seen_at=now, last_seen_at=now)
    mailed = bool(user.email)
    record_event(
        EventType.STAFF_NEW_DEVICE, actor=user, purpose="security", extra={"device": device.pk, "mailed": mailed}
    )
    if mailed:
        prepare_enqueue(send_new_device_mail, str(device.pk)).run()  # as .enqueue(): sent once committed
    return SignedIn(new_device=True, device_token=None if presented else token)


@transaction.atomic(durable=True)
def end_expired_session(request: HttpRequest, *, signed_in_for: int) -> None:
    """End a staff session that reached the absolute limit; recorded with the session's deletion."""
    if isinstance(request.user, User):
        record_event(EventType.STAFF_SESSION_EXPIRED, actor=request.user, extra={"signed_in_for": signed_in_for})
    logout(request)


@transaction.atomic(durable=True)
def record_failed_sign_in(*, username: str, failed_step: str) -> None:
    """Record a refused sign-in: which step failed, and the account only when it is staff's.

    A mistyped username may be anything (a password, another person's name): it is never
    written down, only whether it named a staff account.
    """
    account = User.objects.filter(username=username[:150], is_staff=True).first()
    record_event(
        EventType.STAFF_SIGN_IN_FAILED,
        actor=account,
        purpose="security",
        extra={"known_account": account is not None, "failed_step": failed_step},
    )


@transaction.atomic(durable=True)
def sign_out_staff(request: HttpRequest) -> None:
    """End the session; a staff member's sign-out is recorded with the session's deletion."""
    if isinstance(request.user, User):
        record_event(EventType.STAFF_SIGNED_OUT, actor=request.user)
    logout(request)


# --- the administrator's staff page (issue 8 §2) ------------------------------------------
#
# Each public function checks the actor's role first (``manage_staff``; refused as an unknown
# page, recorded), then makes its change in a durable transaction of its own.  A change the
# rules refuse (suspending oneself, removing the last administrator) raises
# :class:`StaffChangeRefused`, recorded in a transaction of its own so that it outlives the
# caller's error page.  These functions must therefore run outside any transaction.


class StaffChangeRefused(Exception):
    """The change breaks a rule of the staff page; ``code`` (English) is what the log records."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _manager(actor: AbstractBaseUser | AnonymousUser, page: str) -> User:
    if not role_may(staff_role(actor), Capability.MANAGE_STAFF) or not isinstance(actor, User):
        refuse_opening(actor, page, gettext_noop("the role may not manage staff"))
    return actor


def _record_refusal(event: EventType, actor: User, change: str, refused: Exception, **extra: object) -> None:
    code = refused.code if isinstance(refused, StaffChangeRefused | GrantRefused) else type(refused).__name__
    with transaction.atomic(durable=True):
        record_event(event, actor=actor, extra={"change": change, "refusal": code, **extra})


def _declared_role_ids() -> list[str]:
    return [r.id for r in load_declaration().roles]


def _other_managers(target: User) -> list[int]:
    """Active, enrolled staff other than ``target`` who may manage staff, their rows locked: two
    administrators suspending each other at once cannot both succeed."""
    holders = accounts_that_may(Capability.MANAGE_STAFF).values("pk")
    enrolled = Authenticator.objects.filter(confirmed=True).values("user_id")
    return list(
        User.objects.select_for_update()
        .filter(pk__in=holders, is_active=True, is_staff=True)
        .filter(pk__in=enrolled)
        .exclude(pk=target.pk)
        .values_list("pk", flat=True)
    )


def _is_manager(user: User) -> bool:
    return holds_role_that_may(user, Capability.MANAGE_STAFF)


def _staff_member(target_id: int) -> User:
    try:
        return User.objects.select_for_update().get(pk=target_id, is_staff=True)
    except User.DoesNotExist:
        raise Http404 from None


def invite_staff(actor: AbstractBaseUser | AnonymousUser, *, username: str, email: str, role: str) -> User:
    """A staff account with no password yet and an unconfirmed authenticator; the person is
    e-mailed a link to set both (the administrator never sees their password or secret)."""
    admin = _manager(actor, "staff")
    try:
        return _invite(admin, username=username, email=email, role=role)
    except StaffChangeRefused as refused:
        _record_refusal(EventType.STAFF_CHANGE_REFUSED, admin, "invite", refused, role=role[:40])
        raise


@transaction.atomic(durable=True)
def _invite(admin: User, *, username: str, email: str, role: str) -> User:
    if role not in _declared_role_ids():
        raise StaffChangeRefused(gettext_noop("unknown role"), _("Choose a role the policy declares."))
    if not email:
        raise StaffChangeRefused(gettext_noop("no e-mail"), _("The enrolment link is e-mailed: give an address."))
    if User.objects.filter(username=username).exists():
        raise StaffChangeRefused(gettext_noop("user name taken"), _("That user name is taken."))
    user = User.objects.create_user(username, email, None, is_staff=True)  # unusable until enrolment
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    Authenticator.enrol(user, confirmed=False)
    record_event(EventType.STAFF_INVITED, actor=admin, extra={"staff": user.pk, "username": username, "role": role})
    prepare_enqueue(send_enrolment_mail, str(user.pk)).run()  # announced on commit
    return user


def resend_enrolment(actor: AbstractBaseUser | AnonymousUser, target_id: int) -> None:
    """E-mail a new enrolment link to an active member who has not enrolled yet (the first expired
    or went astray); a link already sent stays valid until its own end."""
    admin = _manager(actor, "staff")
    try:
        _resend(admin, target_id)
    except StaffChangeRefused as refused:
        _record_refusal(EventType.STAFF_CHANGE_REFUSED, admin, "resend", refused, staff=target_id)
        raise


@transaction.atomic(durable=True)
def _resend(admin: User, target_id: int) -> None:
    target = _staff_member(target_id)
    if not target.is_active or target.has_usable_password() or not target.email:
        raise StaffChangeRefused(
            gettext_noop("not awaiting enrolment"), _("Only an active account awaiting enrolment gets a new link.")
        )
    record_event(EventType.STAFF_ENROLMENT_RESENT, actor=admin, extra={"staff": target.pk})
    prepare_enqueue(send_enrolment_mail, str(target.pk)).run()


def suspend_staff(actor: AbstractBaseUser | AnonymousUser, target_id: int) -> None:
    """Deactivate an account and end its sessions at once; not oneself, not the last administrator.

    The deactivation's date is recorded (``staff.Deactivation``, and in the event): the account and
    its training records are deleted 1095 days later by the retention sweep, unless reactivated.
    """
    admin = _manager(actor, "staff")
    try:
        _suspend(admin, target_id)
    except StaffChangeRefused as refused:
        _record_refusal(EventType.STAFF_CHANGE_REFUSED, admin, "suspend", refused, staff=target_id)
        raise


@transaction.atomic(durable=True)
def _suspend(admin: User, target_id: int) -> None:
    target = _staff_member(target_id)
    if target.pk == admin.pk:
        raise StaffChangeRefused(gettext_noop("may not suspend oneself"), _("You cannot suspend your own account."))
    if _is_manager(target) and not _other_managers(target):
        raise StaffChangeRefused(
            gettext_noop("the last administrator"), _("This is the last administrator: appoint another first.")
        )
    if not target.is_active:
        return
    deactivated = deactivate(target)
    sessions = delete_sessions(target)
    record_event(
        EventType.STAFF_SUSPENDED,
        actor=admin,
        extra={"staff": target.pk, "sessions_ended": sessions, "deactivated_at": deactivated.isoformat()},
    )


def reactivate_staff(actor: AbstractBaseUser | AnonymousUser, target_id: int) -> None:
    """Let a suspended account sign in again; its deactivation date goes (the retention clock stops)."""
    admin = _manager(actor, "staff")
    _reactivate(admin, target_id)


@transaction.atomic(durable=True)
def _reactivate(admin: User, target_id: int) -> None:
    target = _staff_member(target_id)
    if target.is_active:
        return
    target.is_active = True
    target.save(update_fields=["is_active"])
    Deactivation.objects.filter(user=target).delete()  # the retention's clock stops
    record_event(EventType.STAFF_REACTIVATED, actor=admin, extra={"staff": target.pk})


def change_staff_role(actor: AbstractBaseUser | AnonymousUser, target_id: int, role: str) -> None:
    """Give a staff member another declared role (one role each); not one's own."""
    admin = _manager(actor, "staff")
    try:
        _change_role(admin, target_id, role)
    except StaffChangeRefused as refused:
        _record_refusal(EventType.STAFF_CHANGE_REFUSED, admin, "role", refused, staff=target_id, role=role[:40])
        raise


@transaction.atomic(durable=True)
def _change_role(admin: User, target_id: int, role: str) -> None:
    target = _staff_member(target_id)
    declared = _declared_role_ids()
    if role not in declared:
        raise StaffChangeRefused(gettext_noop("unknown role"), _("Choose a role the policy declares."))
    if target.pk == admin.pk:
        raise StaffChangeRefused(
            gettext_noop("may not change one's own role"), _("Another administrator must change your role.")
        )
    before = sorted(target.groups.filter(name__in=declared).values_list("name", flat=True))
    if before == [role]:
        return
    if _is_manager(target) and role not in roles_with(Capability.MANAGE_STAFF) and not _other_managers(target):
        raise StaffChangeRefused(
            gettext_noop("the last administrator"), _("This is the last administrator: appoint another first.")
        )
    target.groups.remove(*Group.objects.filter(name__in=declared))
    target.groups.add(Group.objects.get_or_create(name=role)[0])
    record_event(
        EventType.STAFF_ROLE_CHANGED, actor=admin, extra={"staff": target.pk, "from": ",".join(before), "to": role}
    )


class EnrolmentInvalid(Exception):
    """The link is unknown, used, expired, or its account suspended."""


def enrolment_account(uid: str, token: str) -> tuple[User, Authenticator]:
    """The account and unconfirmed authenticator an enrolment link opens, or EnrolmentInvalid."""
    try:
        user = User.objects.get(pk=int(urlsafe_base64_decode(uid)), is_staff=True, is_active=True)
    except (ValueError, User.DoesNotExist):
        raise EnrolmentInvalid from None
    device = Authenticator.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None or not enrolment_tokens.check_token(user, token):
        raise EnrolmentInvalid
    return user, device


def complete_enrolment(uid: str, token: str, *, password: str, code: str) -> bool:
    """Set the password and confirm the authenticator when ``code`` is its current one.

    False for a wrong code (its throttling kept: the failure is committed); nothing else changes.
    """
    user, device = enrolment_account(uid, token)
    if not device.verify_token(code):
        return False
    _enrol(user, device.pk, password)
    return True


@transaction.atomic(durable=True)
def _enrol(user: User, device_id: int, password: str) -> None:
    device = Authenticator.objects.select_for_update().get(pk=device_id, confirmed=False)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    user.set_password(password)
    user.save(update_fields=["password"])
    record_event(EventType.STAFF_ENROLLED, actor=user)


# --- time-limited grants to personal data ----------------------------------------------------


class GrantRefused(Exception):
    """A request or decision breaks a grant's rules; ``code`` (English) is what the log records."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


MIN_GRANT_REASON = 10
MAX_GRANT_REASON = 200


def request_grant(
    actor: AbstractBaseUser | AnonymousUser, *, category: str, purpose: str, reason: str, hours: int
) -> AccessGrant:
    """Ask to reveal ``category`` for ``purpose`` for ``hours``; nothing is allowed until approved."""
    role = staff_role(actor)
    if not role_may(role, Capability.REQUEST_GRANTS) or role is None or not isinstance(actor, User):
        refuse_opening(actor, "grants", gettext_noop("the role may not ask for grants"))
    try:
        return _request_grant(actor, role, category=category, purpose=purpose, reason=reason.strip(), hours=hours)
    except GrantRefused as refused:
        _record_refusal(EventType.GRANT_REFUSED, actor, "request", refused, category=category[:40])
        raise


def request_child_ticket(
    actor: AbstractBaseUser | AnonymousUser, person: Person, *, category: str, purpose: str, reason: str, hours: int
) -> AccessGrant:
    """Ask for an approval ticket to reveal one child's ``category`` for ``purpose`` (policy §八,
    CHD-03): a grant of that one person, decided on the grants page by a second staff member whose
    role approves grants, as any grant is.  Only a role granted children's data that may reveal the
    category for the purpose asks; the ticket widens nothing else."""
    role = staff_role(actor)
    if not role_may(role, Capability.SEE_CHILDREN_DATA) or role is None or not isinstance(actor, User):
        refuse_opening(actor, "child ticket", gettext_noop("the role may not see children's data"))
    try:
        return _request_grant(
            actor, role, category=category, purpose=purpose, reason=reason.strip(), hours=hours, person=person
        )
    except GrantRefused as refused:
        _record_refusal(EventType.GRANT_REFUSED, actor, "request", refused, category=category[:40])
        raise


@transaction.atomic(durable=True)
def _request_grant(  # the grant's fields, by name
    actor: User, role: Role, *, category: str, purpose: str, reason: str, hours: int, person: Person | None = None
) -> AccessGrant:
    allowed = may_reveal(role, category, purpose) if person is not None else purpose in role.grantable.get(category, ())
    if not allowed:
        raise GrantRefused(
            gettext_noop("not grantable to the role"), _("Your role may not ask for this category and purpose.")
        )
    if not 1 <= hours <= MAX_GRANT_HOURS:
        raise GrantRefused(
            gettext_noop("duration out of range"),
            _("A grant lasts from 1 to %(most)s hours.") % {"most": MAX_GRANT_HOURS},
        )
    if not MIN_GRANT_REASON <= len(reason) <= MAX_GRANT_REASON:
        raise GrantRefused(
            gettext_noop("reason length"),
            _("Give a reason of %(least)s to %(most)s characters.")
            % {"least": MIN_GRANT_REASON, "most": MAX_GRANT_REASON},
        )
    open_ = AccessGrant.objects.filter(requester=actor, category=category, purpose=purpose, person=person).filter(
        Q(status=AccessGrant.Status.REQUESTED) | Q(status=AccessGrant.Status.APPROVED, expires_at__gt=timezone.now())
    )
    if open_.exists():
        raise GrantRefused(
            gettext_noop("already asked"), _("You already have a request or a grant for this category and purpose.")
        )
    grant = AccessGrant.objects.create(
        requester=actor,
        category=category,
        purpose=purpose,
        reason=reason,
        hours=hours,
        requested_at=timezone.now(),
        person=person,
    )
    record_event(
        EventType.GRANT_REQUESTED,
        actor=actor,
        person=person,
        purpose=purpose,
        reason=reason,
        extra={"grant": grant.pk, "category": category, "hours": hours} | ({"child": True} if person else {}),
    )
    return grant


def approve_grant(actor: AbstractBaseUser | AnonymousUser, grant_id: int) -> None:
    """A second staff member approves: the grant counts from now for its hours."""
    _decide(actor, grant_id, approve=True)


def decline_grant(actor: AbstractBaseUser | AnonymousUser, grant_id: int) -> None:
    _decide(actor, grant_id, approve=False)


def _decide(actor: AbstractBaseUser | AnonymousUser, grant_id: int, *, approve: bool) -> None:
    if not role_may(staff_role(actor), Capability.APPROVE_GRANTS) or not isinstance(actor, User):
        refuse_opening(actor, "grants", gettext_noop("the role may not decide grants"))
    try:
        _decide_grant(actor, grant_id, approve=approve)
    except GrantRefused as refused:
        change = "approve" if approve else "decline"
        _record_refusal(EventType.GRANT_REFUSED, actor, change, refused, grant=grant_id)
        raise


@transaction.atomic(durable=True)
def _decide_grant(actor: User, grant_id: int, *, approve: bool) -> None:
    try:
        grant = AccessGrant.objects.select_for_update().select_related("requester").get(pk=grant_id)
    except AccessGrant.DoesNotExist:
        raise Http404 from None
    if grant.requester_id == actor.pk:
        raise GrantRefused(
            gettext_noop("may not decide one's own request"), _("A second person must decide your own request.")
        )
    if grant.status != AccessGrant.Status.REQUESTED:
        raise GrantRefused(gettext_noop("already decided"), _("This request has already been decided."))
    if approve and not grant.requester.is_active:
        raise GrantRefused(gettext_noop("requester suspended"), _("The account that asked is suspended."))
    now = timezone.now()
    grant.status = AccessGrant.Status.APPROVED if approve else AccessGrant.Status.DECLINED
    grant.decided_by, grant.decided_at = actor, now
    grant.expires_at = now + datetime.timedelta(hours=grant.hours) if approve else None
    grant.save(update_fields=["status", "decided_by", "decided_at", "expires_at"])
    extra: dict[str, object] = {"grant": grant.pk, "requester": grant.requester_id, "category": grant.category}
    if grant.expires_at is not None:
        extra["expires_at"] = grant.expires_at.isoformat()
    if grant.person_id is not None:
        extra["child"] = True
    event = EventType.GRANT_APPROVED if approve else EventType.GRANT_DECLINED
    person = Person(pk=grant.person_id) if grant.person_id is not None else None
    record_event(event, actor=actor, person=person, purpose=grant.purpose, extra=extra)


@transaction.atomic(durable=True)
def expire_grants() -> int:
    """Mark approved grants past their end as expired, each with its event.

    A grant stops counting at ``expires_at`` whether or not this has run (``staff.access`` reads
    the time); this writes the expiry down, so that the log shows when each grant ended.
    """
    due = list(
        AccessGrant.objects.select_for_update().filter(
            status=AccessGrant.Status.APPROVED, expires_at__lte=timezone.now()
        )
    )
    for grant in due:
        grant.status = AccessGrant.Status.EXPIRED
        record_event(
            EventType.GRANT_EXPIRED,
            purpose=grant.purpose,
            extra={"grant": grant.pk, "requester": grant.requester_id, "category": grant.category},
        )
    AccessGrant.objects.bulk_update(due, ["status"])
    return len(due)


# --- access reviews (policy §五.3) -------------------------------------------------------------


class ReviewRefused(Exception):
    """A review step that is not allowed: the message is for the reviewer, in their language."""


@transaction.atomic(durable=True)
def open_access_review(*, by: User | None = None, now: datetime.datetime | None = None) -> AccessReview:
    """Open a campaign: one line per active staff member with their roles, grants and reveals.

    ``by``: the reviewer who opened it (None: the periodic job).  One campaign at a time: an
    open one must be completed or enforced first."""
    now = now or timezone.now()
    # Two openers at once (the periodic job and a reviewer) queue on the latest campaign's row.
    last = AccessReview.objects.select_for_update().order_by("-id").first()
    if AccessReview.objects.filter(completed_at__isnull=True).exists():
        raise ReviewRefused(_("An access review is already open: finish it first."))
    review = AccessReview.objects.create(
        opened_at=now,
        opened_by=by,
        period_start=reviews.period_start(last, now),
        period_end=now,
        deadline=now + datetime.timedelta(days=settings.PIWARDEN_ACCESS_REVIEW_DAYS),
    )
    staff = list(User.objects.filter(is_staff=True, is_active=True).order_by("username"))
    summaries = reviews.reveal_summaries((u.pk for u in staff), review.period_start, review.period_end)
    AccessReviewLine.objects.bulk_create(
        AccessReviewLine(
            review=review,
            staff=user,
            roles=reviews.declared_roles_of(user),
            grants=reviews.grants_of(user, now),
            reveals=summaries.get(user.pk, []),
        )
        for user in staff
    )
    record_event(
        EventType.ACCESS_REVIEW_OPENED,
        actor=by,
        purpose="access_accountability",
        extra={"review": review.pk, "lines": len(staff), "deadline": review.deadline.isoformat()},
    )
    send_review_opened_mail.enqueue(str(review.pk))
    return review


def open_review_if_due(now: datetime.datetime | None = None) -> AccessReview | None:
    """The periodic job's opening: a campaign when the last is a period old and none is open."""
    now = now or timezone.now()
    if AccessReview.objects.filter(completed_at__isnull=True).exists():
        return None
    if not reviews.next_review_due(AccessReview.objects.order_by("-opened_at", "-id").first(), now):
        return None
    try:
        return open_access_review(now=now)
    except ReviewRefused:  # a reviewer opened one in between
        return None


def _take_roles(user: User) -> list[str]:
    """Remove ``user``'s declared roles (their groups): the console and every reveal refuse at once."""
    roles = reviews.declared_roles_of(user)
    user.groups.remove(*Group.objects.filter(name__in=roles))
    return roles


def _complete_if_decided(review: AccessReview, now: datetime.datetime, actor: User | None) -> bool:
    if AccessReviewLine.objects.filter(review=review, decision=Decision.PENDING).exists():
        return False
    review.completed_at = now
    review.save(update_fields=["completed_at"])
    _sign(review, actor)
    return True


def _sign(review: AccessReview, actor: User | None) -> bool:
    """Sign a completed review, in the caller's transaction.  Without the signing key the review
    stays complete and unsigned (a revocation must not wait for a key); the periodic job signs it
    once the key is back (:func:`sign_completed_reviews`)."""
    try:
        reviews.sign(review)
    except VaultUnavailable as exc:
        logger.error("access review %s is complete but not signed: %s", review.pk, exc)
        return False
    review.save(update_fields=["document", "signature"])
    record_event(
        EventType.ACCESS_REVIEW_SIGNED,
        actor=actor,
        purpose="access_accountability",
        extra={"review": review.pk, "lines": review.lines.count()},
    )
    return True


def sign_completed_reviews() -> list[int]:
    """The periodic job: sign the reviews completed while the signing key was missing."""
    signed = []
    for review_id in AccessReview.objects.filter(completed_at__isnull=False, signature="").values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            review = AccessReview.objects.select_for_update().get(pk=review_id)
            if not review.signature and _sign(review, None):
                signed.append(review.pk)
    return signed


@transaction.atomic(durable=True)
def decide_access(line_id: int, *, reviewer: User, confirm: bool) -> AccessReviewLine:
    """Confirm a line, or revoke it (the staff member's roles are removed at once).

    Nobody decides their own line: a second reviewer must.  The last decision completes and
    signs the campaign.  The caller has checked that ``reviewer``'s role runs access reviews."""
    line = AccessReviewLine.objects.select_for_update().select_related("review", "staff").get(pk=line_id)
    if line.staff_id == reviewer.pk:
        raise ReviewRefused(_("You cannot review your own access: another reviewer must."))
    if line.review.is_complete or line.decision != Decision.PENDING:
        raise ReviewRefused(_("This line is already decided."))
    now = timezone.now()
    removed = [] if confirm else _take_roles(line.staff)
    line.decision = Decision.CONFIRMED if confirm else Decision.REVOKED
    line.decided_by, line.decided_at = reviewer, now
    line.save(update_fields=["decision", "decided_by", "decided_at"])
    record_event(
        EventType.ACCESS_CONFIRMED if confirm else EventType.ACCESS_REVOKED,
        actor=reviewer,
        purpose="access_accountability",
        extra={"review": line.review_id, "staff": line.staff_id, "roles": line.roles, "removed": removed},
    )
    _complete_if_decided(line.review, now, reviewer)
    return line


@transaction.atomic(durable=True)
def enforce_review_deadline(review_id: int, now: datetime.datetime | None = None) -> int:
    """Past the deadline: suspend (remove the roles of) every line still unreviewed, then
    complete and sign the campaign.  Returns how many were suspended (0 before the deadline)."""
    now = now or timezone.now()
    review = AccessReview.objects.select_for_update().get(pk=review_id)
    if review.is_complete or now < review.deadline:
        return 0
    suspended = 0
    for line in AccessReviewLine.objects.filter(review=review, decision=Decision.PENDING).select_related("staff"):
        removed = _take_roles(line.staff)
        line.decision, line.decided_at = Decision.SUSPENDED, now
        line.save(update_fields=["decision", "decided_at"])
        record_event(
            EventType.ACCESS_SUSPENDED,
            purpose="access_accountability",
            extra={"review": review.pk, "staff": line.staff_id, "roles": line.roles, "removed": removed},
        )
        suspended += 1
    review.enforced_at = now
    review.save(update_fields=["enforced_at"])
    _complete_if_decided(review, now, None)
    return suspended


def enforce_review_deadlines(now: datetime.datetime | None = None) -> dict[int, int]:
    """The periodic job: every open campaign past its deadline, each in its own transaction."""
    now = now or timezone.now()
    overdue = AccessReview.objects.filter(completed_at__isnull=True, deadline__lte=now).values_list("pk", flat=True)
    return {pk: enforce_review_deadline(pk, now) for pk in list(overdue)}


@transaction.atomic(durable=True)
def record_review_export(review: AccessReview, *, by: User | None) -> None:
    """A signed review leaves the database (a download or a file): who took it, when."""
    record_event(
        EventType.ACCESS_REVIEW_EXPORTED, actor=by, purpose="access_accountability", extra={"review": review.pk}
    )


# --- training (policy §五.5) -----------------------------------------------------------------


@transaction.atomic(durable=True)
def record_training(
    staff: User, *, course: str, completed_on: datetime.date, recorded_by: User | None
) -> TrainingRecord:
    """Record a completed course (``recorded_by`` None: the operator at the command line).

    Nobody records their own: an attestation is someone else's word.  A date in the future is refused."""
    course = course.strip()
    if recorded_by is not None and recorded_by.pk == staff.pk:
        raise ReviewRefused(_("You cannot record your own training: another person must."))
    if not course:
        raise ReviewRefused(_("Name the course."))
    if completed_on > training.today():
        raise ReviewRefused(_("The completion date is in the future."))
    record = TrainingRecord.objects.create(
        staff=staff, course=course[:200], completed_on=completed_on, recorded_by=recorded_by, recorded_at=timezone.now()
    )
    record_event(
        EventType.TRAINING_RECORDED,
        actor=recorded_by,
        purpose="staff_administration",
        extra={
            "staff": staff.pk,
            "completed_on": completed_on.isoformat(),
            "expires_on": training.expires_on(completed_on).isoformat(),
        },
    )
    return record


def send_training_notices(on: datetime.date | None = None) -> list[int]:
    """The periodic job: tell each staff member whose role reveals personal data that their
    attestation expires within ``PIWARDEN_TRAINING_NOTICE_DAYS``, and again once it has; each
    notice once per expiry (a renewal starts afresh).  Returns the notices' ids."""
    on = on or training.today()
    sent: list[int] = []
    for user in User.objects.filter(is_staff=True, is_active=True).order_by("pk"):
        if not training.needs_training(declared_role(user)):
            continue
        latest = training.latest_training(user)
        if latest is None:
            continue  # never trained: the training page lists them; there is no expiry to announce
        ends = training.expires_on(latest.completed_on)
        if on >= ends:
            kind = TrainingNotice.Kind.EXPIRED
        elif on >= ends - datetime.timedelta(days=settings.PIWARDEN_TRAINING_NOTICE_DAYS):
            kind = TrainingNotice.Kind.DUE_SOON
        else:
            continue
        notice = _notice(user, kind, ends)
        if notice is not None:
            sent.append(notice)
    return sent


@transaction.atomic(durable=True)
def _notice(user: User, kind: str, ends: datetime.date) -> int | None:
    notice, created = TrainingNotice.objects.get_or_create(
        staff=user, kind=kind, expires_on=ends, defaults={"created_at": timezone.now()}
    )
    if not created:
        return None
    record_event(
        EventType.TRAINING_NOTICE,
        purpose="staff_administration",
        extra={"staff": user.pk, "kind": kind, "expires_on": ends.isoformat()},
    )
    send_training_notice_mail.enqueue(str(notice.pk))
    return notice.pk
