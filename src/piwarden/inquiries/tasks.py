"""Background work for consultation requests: thin tasks calling the domain.

Both tasks are idempotent: a retry after a crash re-checks what was done.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.tasks import task
from django.template.loader import render_to_string
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.inquiries.models import Inquiry
from piwarden.policy import gate
from piwarden.policy.declaration import load_declaration

PURPOSE = "respond_inquiry"


class AcknowledgementNotSent(Exception):
    """Sending failed; the message names the request and the error class, never the address."""


@task()
def acknowledge_inquiry(inquiry_id: str) -> str:
    """E-mail the person that their request arrived (a use of their e-mail: gated)."""
    with transaction.atomic():
        inquiry = Inquiry.objects.select_for_update().select_related("person").get(pk=inquiry_id)
        if inquiry.acknowledged_at is not None:
            return "already acknowledged"
        decision = gate.check(inquiry.person, PURPOSE)
        if not decision.allowed:
            record_event(
                EventType.PROCESSING_REFUSED,
                person=inquiry.person,
                purpose=PURPOSE,
                reason=decision.reason,
                extra={"context": "inquiry.acknowledge", "inquiry": inquiry.reference},
            )
            return f"refused: {decision.reason}"
        context = {"inquiry": inquiry, "policy": load_declaration(), "site_url": settings.PIWARDEN_SITE_URL}
        with translation.override(inquiry.language):
            subject = render_to_string("inquiries/email/acknowledgement_subject.txt", context).strip()
            body = render_to_string("inquiries/email/acknowledgement.txt", context)
        recipient = inquiry.email
        if recipient is None:  # crypto-shredded meanwhile
            return "erased"
        try:
            EmailMultiAlternatives(subject, body, to=[recipient]).send()
        except OSError as exc:  # socket and SMTP errors (smtplib.SMTPException is an OSError)
            # SMTP errors quote the recipient (SMTPRecipientsRefused, server replies), and the
            # task backend stores the traceback in plaintext and logs it: keep the class only.
            error = f"{type(exc).__module__}.{type(exc).__qualname__}"
            raise AcknowledgementNotSent(f"{error} while acknowledging {inquiry.reference}") from None
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


@task()
def notify_sales(inquiry_id: str) -> str:
    """Tell the sales inbox a request arrived; the e-mail holds no personal data."""
    inquiry = Inquiry.objects.get(pk=inquiry_id)
    context = {"inquiry": inquiry, "site_url": settings.PIWARDEN_SITE_URL, "policy": load_declaration()}
    with translation.override("zh-hans"):
        subject = render_to_string("inquiries/email/sales_subject.txt", context).strip()
        body = render_to_string("inquiries/email/sales.txt", context)
    EmailMultiAlternatives(subject, body, to=[settings.PIWARDEN_SALES_EMAIL]).send()
    return "sent"
