"""The e-mails of a consultation request, as actions: the acknowledgement and the sales notice.

Each action runs in three steps, so that no transaction is open while the mail server talks:

1. in a durable transaction (for the acknowledgement, the gate's), return at once if the e-mail
   already went out, else read what the message needs and render it;
2. send, with no transaction open: on SQLite a transaction holds the one write lock of the whole
   site, and a mail server may take up to its timeout (30 s) to answer, far past the 5 s that
   every other writer waits before it gives up;
3. in a second durable transaction, record that it went out (only if no other run did meanwhile).

Running an action twice after it succeeded sends nothing.  A crash between steps 2 and 3 would
send the e-mail again on the next try: at least once, as before (sending inside the transaction
had the same window between the send and the commit).  A failed send raises
:class:`MailNotSent` and leaves nothing behind; :mod:`piwarden.inquiries.tasks` wraps each action
in a task that tries again later, and calls :func:`record_mail_failure` when it gives up.

These live apart from :mod:`piwarden.inquiries.actions` because the submission there queues
the tasks that call them: one module holding both would import itself through the tasks.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.inquiries.models import CATEGORY, Inquiry
from piwarden.mailing import MailNotSent, send
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate

# The declared purpose of the consultation data (policy/declaration.toml): storing, answering, acknowledging.
PURPOSE = "respond_inquiry"


__all__ = ["MailNotSent", "record_mail_failure", "send_acknowledgement", "send_sales_notice"]


def send_acknowledgement(inquiry_id: str) -> str:
    """E-mail the person that their request arrived: a use of their e-mail, so the gate decides."""
    inquiry = Inquiry.objects.get(pk=inquiry_id)
    if inquiry.acknowledged_at is not None:
        return "already acknowledged"
    use = gate.Use("inquiry.acknowledge", fields=("email",), extra={"inquiry": inquiry.reference})
    person = functools.partial(Person.objects.get, pk=inquiry.person_id)  # read in the gate's transaction
    try:
        with gate.processing(person, PURPOSE, categories={CATEGORY}, use=use):
            current = Inquiry.objects.get(pk=inquiry.pk)
            if current.acknowledged_at is not None:  # another worker was quicker
                return "already acknowledged"
            recipient = current.email
            if recipient is None:  # crypto-shredded meanwhile
                return "erased"
            context = {"inquiry": current, "policy": load_declaration(), "site_url": settings.PIWARDEN_SITE_URL}
            with translation.override(current.language):
                subject = render_to_string("inquiries/email/acknowledgement_subject.txt", context).strip()
                body = render_to_string("inquiries/email/acknowledgement.txt", context)
    except gate.ProcessingRefused as refused:
        return f"refused: {refused.decision.reason}"  # recorded by the gate
    send(subject, body, [recipient], about=current.reference)
    _record_acknowledged(current)
    return "sent"


@transaction.atomic(durable=True)
def _record_acknowledged(inquiry: Inquiry) -> None:
    marked = Inquiry.objects.filter(pk=inquiry.pk, acknowledged_at__isnull=True).update(acknowledged_at=timezone.now())
    if marked:
        record_event(
            EventType.INQUIRY_ACKNOWLEDGED,
            person=inquiry.person,
            purpose=PURPOSE,
            fields=["email"],
            extra={"inquiry": inquiry.reference},
        )


def send_sales_notice(inquiry_id: str) -> str:
    """Tell the sales inbox a request arrived; the e-mail holds no personal data (nothing to ask the gate)."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("send_sales_notice() talks to the mail server: it must not run inside a transaction")
    inquiry = Inquiry.objects.get(pk=inquiry_id)
    if inquiry.sales_notified_at is not None:
        return "already notified"
    context = {"inquiry": inquiry, "site_url": settings.PIWARDEN_SITE_URL, "policy": load_declaration()}
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string("inquiries/email/sales_subject.txt", context).strip()
        body = render_to_string("inquiries/email/sales.txt", context)
    send(subject, body, [settings.PIWARDEN_SALES_EMAIL], about=inquiry.reference)
    with transaction.atomic(durable=True):
        Inquiry.objects.filter(pk=inquiry.pk, sales_notified_at__isnull=True).update(sales_notified_at=timezone.now())
    return "sent"


@transaction.atomic(durable=True)
def record_mail_failure(inquiry_id: str, *, task: str, attempts: int, error: str) -> None:
    """Every attempt failed: leave it in the audit log, so that staff follow up by phone."""
    inquiry = Inquiry.objects.select_related("person").get(pk=inquiry_id)
    record_event(
        EventType.MAIL_FAILED,
        person=inquiry.person,
        purpose=PURPOSE,
        reason=error,
        extra={"inquiry": inquiry.reference, "attempts": attempts, "task": task},
    )
