"""The guardian's e-mail, as an action run by ``children.tasks.send_guardian_mail``.

As the other mail actions (``inquiries.mail``): read and render under the gate (the guardian's
e-mail is the child's data, used for ``children_protection``), send with no transaction open,
then record that it went out.  Apart from ``children.actions``, which queues the task that calls
it, so that the imports run one way.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.children.access import PURPOSE, link_token
from piwarden.children.models import GuardianRequest
from piwarden.mailing import MailNotSent, send
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate

__all__ = ["MailNotSent", "record_mail_failure", "send_guardian_request"]


def send_guardian_request(request_id: str) -> str:
    """E-mail the guardian the one-use link (once; nothing for a request no longer open)."""
    request = GuardianRequest.objects.get(pk=request_id)
    if request.mailed_at is not None:
        return "already sent"
    if not request.is_open:
        return "no longer open"
    use = gate.Use("children.guardian_mail", fields=("guardian_email",), extra={"request": str(request.pk)})
    person = Person.objects.get(pk=request.person_id)
    try:
        with gate.processing(person, PURPOSE, categories={"guardian_contacts"}, use=use):
            current = GuardianRequest.objects.get(pk=request.pk)
            recipient = current.guardian_email
            if recipient is None:  # crypto-shredded meanwhile
                return "erased"
            with translation.override(current.language):
                context = {
                    "link": settings.PIWARDEN_SITE_URL + reverse("site:guardian", args=[link_token(current)]),
                    "expires_at": current.expires_at,
                    "policy": load_declaration(),
                    "site_url": settings.PIWARDEN_SITE_URL,
                }
                subject = render_to_string("children/email/guardian_request_subject.txt", context).strip()
                body = render_to_string("children/email/guardian_request.txt", context)
    except gate.ProcessingRefused as refused:
        return f"refused: {refused.decision.reason}"  # recorded by the gate
    send(subject, body, [recipient], about=f"guardian request {request.pk}")
    with transaction.atomic(durable=True):
        GuardianRequest.objects.filter(pk=request.pk, mailed_at__isnull=True).update(mailed_at=timezone.now())
    return "sent"


@transaction.atomic(durable=True)
def record_mail_failure(request_id: str, *, task: str, attempts: int, error: str) -> None:
    """Every attempt failed: leave it in the audit log (the child's account stays pending)."""
    request = GuardianRequest.objects.select_related("person").get(pk=request_id)
    record_event(
        EventType.MAIL_FAILED,
        person=request.person,
        purpose=PURPOSE,
        reason=error,
        extra={"guardian_request": str(request.pk), "attempts": attempts, "task": task},
    )
