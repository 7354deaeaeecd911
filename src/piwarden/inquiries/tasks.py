"""Background work for consultation requests: thin tasks calling the domain.

Both tasks are idempotent (each records that it was done, under a row lock,
in the transaction that does it), so running one twice sends nothing twice.

django-tasks-db never retries a failed task, and "nothing acknowledged is
lost" needs the e-mail to go out eventually: when sending fails, the task
queues its own next attempt with exponential back-off (1, 2, 4 … 60 minutes,
``MAX_ATTEMPTS`` in all) before failing this run.  The last failure is
written to the audit log so that staff can follow up by phone.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.tasks import Task, task
from django.template.loader import render_to_string
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.inquiries.models import CATEGORY, Inquiry
from piwarden.policy import gate
from piwarden.policy.declaration import load_declaration

PURPOSE = "respond_inquiry"
MAX_ATTEMPTS = 8


class MailNotSent(Exception):
    """Sending failed; the message names the request and the error class, never the address."""


def _send(subject: str, body: str, recipient: str, reference: str) -> None:
    try:
        EmailMultiAlternatives(subject, body, to=[recipient]).send()
    except OSError as exc:  # socket and SMTP errors (smtplib.SMTPException is an OSError)
        # SMTP errors quote the recipient (SMTPRecipientsRefused, server replies), and the
        # task backend stores the traceback in plaintext and logs it: keep the class only.
        error = f"{type(exc).__module__}.{type(exc).__qualname__}"
        raise MailNotSent(f"{error} while mailing about {reference}") from None


def _retry_later(task_: Task[[str, int], str], inquiry: Inquiry, attempt: int, exc: MailNotSent) -> None:
    """Queue the next attempt (committed on its own), or give up and record it."""
    if attempt < MAX_ATTEMPTS:
        delay = datetime.timedelta(minutes=min(2 ** (attempt - 1), 60))
        task_.using(run_after=timezone.now() + delay).enqueue(str(inquiry.pk), attempt + 1)
        return
    with transaction.atomic():
        record_event(
            EventType.MAIL_FAILED,
            person=inquiry.person,
            purpose=PURPOSE,
            reason=str(exc),
            extra={"inquiry": inquiry.reference, "attempts": attempt, "task": task_.name},
        )


def _with_retry(task_: Task[[str, int], str], inquiry_id: str, attempt: int, work: Callable[[], str]) -> str:
    try:
        return work()
    except MailNotSent as exc:
        _retry_later(task_, Inquiry.objects.select_related("person").get(pk=inquiry_id), attempt, exc)
        raise


@task()
def acknowledge_inquiry(inquiry_id: str, attempt: int = 1) -> str:
    """E-mail the person that their request arrived (a use of their e-mail: gated)."""

    def work() -> str:
        with transaction.atomic():
            inquiry = Inquiry.objects.select_for_update().select_related("person").get(pk=inquiry_id)
            if inquiry.acknowledged_at is not None:
                return "already acknowledged"
            decision = gate.check(inquiry.person, PURPOSE, category=CATEGORY)
            if not decision.allowed:
                record_event(
                    EventType.PROCESSING_REFUSED,
                    person=inquiry.person,
                    purpose=PURPOSE,
                    reason=decision.reason,
                    extra={"context": "inquiry.acknowledge", "inquiry": inquiry.reference},
                )
                return f"refused: {decision.reason}"
            recipient = inquiry.email
            if recipient is None:  # crypto-shredded meanwhile
                return "erased"
            context = {"inquiry": inquiry, "policy": load_declaration(), "site_url": settings.PIWARDEN_SITE_URL}
            with translation.override(inquiry.language):
                subject = render_to_string("inquiries/email/acknowledgement_subject.txt", context).strip()
                body = render_to_string("inquiries/email/acknowledgement.txt", context)
            _send(subject, body, recipient, inquiry.reference)
            inquiry.acknowledged_at = timezone.now()
            inquiry.save(update_fields=["acknowledged_at"])
            record_event(
                EventType.INQUIRY_ACKNOWLEDGED,
                person=inquiry.person,
                purpose=PURPOSE,
                fields=["email"],
                extra={"inquiry": inquiry.reference},
            )
        return "sent"

    return _with_retry(acknowledge_inquiry, inquiry_id, attempt, work)


@task()
def notify_sales(inquiry_id: str, attempt: int = 1) -> str:
    """Tell the sales inbox a request arrived; the e-mail holds no personal data."""

    def work() -> str:
        with transaction.atomic():
            inquiry = Inquiry.objects.select_for_update().get(pk=inquiry_id)
            if inquiry.sales_notified_at is not None:
                return "already notified"
            context = {"inquiry": inquiry, "site_url": settings.PIWARDEN_SITE_URL, "policy": load_declaration()}
            with translation.override(settings.LANGUAGE_CODE):
                subject = render_to_string("inquiries/email/sales_subject.txt", context).strip()
                body = render_to_string("inquiries/email/sales.txt", context)
            _send(subject, body, settings.PIWARDEN_SALES_EMAIL, inquiry.reference)
            inquiry.sales_notified_at = timezone.now()
            inquiry.save(update_fields=["sales_notified_at"])
        return "sent"

    return _with_retry(notify_sales, inquiry_id, attempt, work)
