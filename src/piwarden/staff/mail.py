"""Staff e-mails, as actions (read and render, send with no transaction open, then record that it
went out, so that each goes once: :mod:`piwarden.inquiries.mail` says why).

* The new-device alert names the account and the time of the sign-in, in the staff member's
  console language; nothing about the browser (it is not known in clear: :mod:`piwarden.staff.devices`).
* The enrolment link is apart from :mod:`piwarden.staff.actions` because the invitation there
  queues the task that calls :func:`send_enrolment`: one module holding both would import itself.
* The training notice (policy §五.5, ``TrainingNotice.mailed_at``) goes to the staff member's own
  address, in their console language, and names only their user name and the dates; without an
  address on the account it goes to the privacy officer's, who tells them another way.
* The opening of an access review (``AccessReview.mailed_at``) goes to the privacy officer's
  address: how many lines, the deadline, and the link.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, User
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import urlsafe_base64_encode

from piwarden.audit.log import EventType, record_event
from piwarden.mailing import send
from piwarden.staff.models import AccessReview, KnownDevice, TrainingNotice, preferred_language


def send_new_device_alert(device_id: str) -> str:
    device = KnownDevice.objects.select_related("user").get(pk=int(device_id))
    if device.alerted_at is not None:
        return "already sent"
    user = device.user
    if not user.email:
        return "no address"
    context = {
        "username": user.get_username(),
        "when": timezone.localtime(device.first_seen_at),
        "console_url": settings.PIWARDEN_SITE_URL.rstrip("/") + reverse("backoffice:inbox"),
    }
    with translation.override(preferred_language(user) or settings.LANGUAGE_CODE):
        subject = render_to_string("staff/email/new_device_subject.txt", context).strip()
        body = render_to_string("staff/email/new_device.txt", context)
    send(subject, body, [user.email], about=f"staff device {device.pk}")
    with transaction.atomic(durable=True):
        KnownDevice.objects.filter(pk=device.pk, alerted_at__isnull=True).update(alerted_at=timezone.now())
    return "sent"


@transaction.atomic(durable=True)
def record_mail_failure(device_id: str, *, task: str, attempts: int, error: str) -> None:
    """Every attempt failed: leave it in the audit log for the security team."""
    device = KnownDevice.objects.select_related("user").get(pk=int(device_id))
    record_event(
        EventType.MAIL_FAILED,
        actor=device.user,
        purpose="security",
        reason=error,
        extra={"device": device.pk, "attempts": attempts, "task": task},
    )


class EnrolmentTokens(PasswordResetTokenGenerator):
    """The enrolment link's token: Django's password-reset token under a salt of its own.

    Nothing is stored: the token signs the account's id, its password hash and whether it is
    active, so it stops working once the person has set a password (one use), when the account is
    suspended, and after ``PASSWORD_RESET_TIMEOUT`` (Django's default, three days).
    """

    key_salt = "piwarden.staff.enrolment"

    def _make_hash_value(self, user: AbstractBaseUser, timestamp: int) -> str:
        return f"{user.pk}{user.password}{user.is_active}{timestamp}"


enrolment_tokens = EnrolmentTokens()


def send_enrolment(user_id: str) -> str:
    """E-mail a fresh enrolment link; the token is made now, from the account's state, never stored."""
    user = User.objects.filter(pk=int(user_id), is_active=True).first()
    if user is None or user.has_usable_password() or not user.email:
        return "nothing to send"
    uid = urlsafe_base64_encode(str(user.pk).encode())
    path = reverse("backoffice:enrol", args=[uid, enrolment_tokens.make_token(user)])
    context = {"user": user, "link": settings.PIWARDEN_SITE_URL.rstrip("/") + path, "hours": _link_hours()}
    subject = render_to_string("staff/email/enrolment_subject.txt", context).strip()
    body = render_to_string("staff/email/enrolment.txt", context)
    send(subject, body, [user.email], about=f"staff account {user.pk}")
    return "sent"


def _link_hours() -> int:
    return int(settings.PASSWORD_RESET_TIMEOUT) // 3600


@transaction.atomic(durable=True)
def record_enrolment_mail_failure(user_id: str, *, task: str, attempts: int, error: str) -> None:
    """Every attempt failed: the administrator sees it in the log and tells the person another way."""
    record_event(EventType.MAIL_FAILED, reason=error, extra={"staff": int(user_id), "attempts": attempts, "task": task})


def send_training_notice(notice_id: str) -> str:
    notice = TrainingNotice.objects.select_related("staff").get(pk=notice_id)
    if notice.mailed_at is not None:
        return "already sent"
    staff = notice.staff
    recipient = staff.email or settings.PIWARDEN_PRIVACY_OFFICER_EMAIL
    context = {
        "notice": notice,
        "expired": notice.kind == TrainingNotice.Kind.EXPIRED,
        "username": staff.get_username(),
        "expires_on": notice.expires_on.isoformat(),
        "console_url": settings.PIWARDEN_SITE_URL.rstrip("/") + reverse("backoffice:inbox"),
    }
    with translation.override(preferred_language(staff) or settings.LANGUAGE_CODE):
        subject = render_to_string("staff/email/training_subject.txt", context).strip()
        body = render_to_string("staff/email/training.txt", context)
    send(subject, body, [recipient], about=f"training notice {notice.pk}")
    with transaction.atomic(durable=True):
        TrainingNotice.objects.filter(pk=notice.pk, mailed_at__isnull=True).update(mailed_at=timezone.now())
    return "sent"


@transaction.atomic(durable=True)
def record_training_mail_failure(object_id: str, *, task: str, attempts: int, error: str) -> None:
    """Every attempt failed: the privacy officer finds it in the audit log (and on the training page)."""
    notice = TrainingNotice.objects.get(pk=object_id)
    record_event(
        EventType.MAIL_FAILED,
        purpose="staff_administration",
        reason=error,
        extra={"training_notice": notice.pk, "staff": notice.staff_id, "attempts": attempts, "task": task},
    )


def send_review_opened(review_id: str) -> str:
    review = AccessReview.objects.get(pk=review_id)
    if review.mailed_at is not None:
        return "already sent"
    context = {
        "review": review,
        "lines": review.lines.count(),
        "deadline": timezone.localtime(review.deadline).strftime("%Y-%m-%d %H:%M"),
        "url": settings.PIWARDEN_SITE_URL.rstrip("/") + reverse("backoffice:access_review", args=[review.pk]),
    }
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string("staff/email/review_opened_subject.txt", context).strip()
        body = render_to_string("staff/email/review_opened.txt", context)
    send(subject, body, [settings.PIWARDEN_PRIVACY_OFFICER_EMAIL], about=f"access review {review.pk}")
    with transaction.atomic(durable=True):
        AccessReview.objects.filter(pk=review.pk, mailed_at__isnull=True).update(mailed_at=timezone.now())
    return "sent"


@transaction.atomic(durable=True)
def record_review_mail_failure(object_id: str, *, task: str, attempts: int, error: str) -> None:
    record_event(
        EventType.MAIL_FAILED,
        purpose="access_accountability",
        reason=error,
        extra={"access_review": int(object_id), "attempts": attempts, "task": task},
    )
