"""The guardian's e-mail, as an action run by ``children.tasks.send_guardian_mail``.

As the other mail actions (``inquiries.mail``): read and render inside the use the gate allowed,
send with no transaction open, then record that it went out.  The request belongs to no person
yet (nothing of the child is stored before the guardian consents, CHD-01), so the gate decides
in its form for processing about nobody stored (``gate.unattributed``): purpose
``children_protection`` (a statutory duty: PIPL 31) for the guardian's contact, the use recorded
under that basis.  The address is read from the request sealed under its own key, which a refusal
or the expiry destroys (``"erased"`` then).  Apart from ``children.actions``, which queues the
task that calls it, so that the imports run one way.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.children.access import CONTACTS, PURPOSE, link_token
from piwarden.children.models import GuardianRequest
from piwarden.mailing import MailNotSent, send
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate

__all__ = ["MailNotSent", "record_mail_failure", "send_guardian_request"]


def send_guardian_request(request_id: str) -> str:
    """E-mail the guardian the one-use link (once; nothing for a request no longer open)."""
    request = GuardianRequest.objects.filter(pk=request_id).first()
    if request is None:  # refused or expired meanwhile: deleted with its key
        return "erased"
    if request.mailed_at is not None:
        return "already sent"
    if not request.is_open:
        return "no longer open"
    use = gate.Use("children.guardian_request", fields=("guardian_email",), extra={"guardian_request": request_id})
    try:
        with gate.unattributed(PURPOSE, categories={CONTACTS}, use=use):
            recipient = request.guardian_email
            if recipient is None:  # crypto-shredded meanwhile
                return "erased"
            with translation.override(request.language):
                context = {
                    "link": settings.PIWARDEN_SITE_URL + reverse("site:guardian", args=[link_token(request)]),
                    "expires_at": request.expires_at,
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
    request = GuardianRequest.objects.select_related("person").filter(pk=request_id).first()
    record_event(
        EventType.MAIL_FAILED,
        person=request.person if request is not None else None,
        purpose=PURPOSE,
        reason=error,
        extra={"guardian_request": request_id, "attempts": attempts, "task": task},
    )
