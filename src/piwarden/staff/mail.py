"""The staff e-mails, sent as the other apps' mail actions are: read and render, send with no
transaction open, then record that it went out, so that each goes once.

* The training notice (policy §五.5, ``TrainingNotice.mailed_at``) goes to the staff member's own
  address, in their console language, and names only their user name and the dates; without an
  address on the account it goes to the privacy officer's, who tells them another way.
* The opening of an access review (``AccessReview.mailed_at``) goes to the privacy officer's
  address: how many lines, the deadline, and the link.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.mailing import send
from piwarden.staff.models import AccessReview, TrainingNotice, preferred_language


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
def record_mail_failure(object_id: str, *, task: str, attempts: int, error: str) -> None:
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
