"""Write paths for staff accounts and sessions.

Each function here is an entry point (Zulip's ``do_*``): it opens its own durable transaction,
so it cannot be nested in a caller's by mistake, changes the state and writes its audit event
in that transaction.  Views and commands call one of them and keep only their interface.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from piwarden.audit.log import EventType, record_event
from piwarden.staff import reviews, training
from piwarden.staff.access import declared_role
from piwarden.staff.models import (
    AccessReview,
    AccessReviewLine,
    Authenticator,
    Decision,
    StaffPreference,
    TrainingNotice,
    TrainingRecord,
)
from piwarden.staff.tasks import send_review_opened_mail, send_training_notice_mail
from piwarden.vault.keys import VaultUnavailable

logger = logging.getLogger("piwarden.staff")


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


@transaction.atomic(durable=True)
def sign_in_staff(request: HttpRequest, user: User) -> None:
    """Start the session of a staff member whose password and code the sign-in form accepted.

    The session, the last-login time and the ``staff.signed_in`` event commit together: no
    session exists that the log does not show.
    """
    login(request, user)
    record_event(EventType.STAFF_SIGNED_IN, actor=user)


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
