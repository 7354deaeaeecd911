"""The e-mails of a rights request, as actions: the one-time code and the receipt.

Each runs as the consultation's e-mails do (:mod:`piwarden.inquiries.mail`), in three steps so
that no transaction is open while the mail server talks: in the gate's durable transaction, read
what the message needs and render it (or return at once if it went out already); send, with no
transaction open; in a second durable transaction, record that it went out.

* The code e-mail reads the code sealed on its row (``VerificationCode.sealed_code``) and clears
  it once sent: the code then exists only as its keyed digest.  A code past its 10 minutes is not
  sent any more.
* The receipt e-mail names the reference, the day of receipt and the due date, and says when the
  date is provisional (a year of the count whose schedule is not loaded).

Both are written in the request's language, and every link is built from a named URL.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.mailing import MailNotSent, send
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate
from piwarden.rights.access import PURPOSE
from piwarden.rights.models import CODE_LIFETIME, RequestStep, RightsRequest, VerificationCode

# policy/declaration.toml: the category of a request's personal fields (the purpose: rights.access).
CATEGORY = "rights_requests"


__all__ = ["MailNotSent", "record_mail_failure", "send_alert", "send_code", "send_receipt", "send_step"]


def _link(name: str, language: str) -> str:
    with translation.override(language):
        return settings.PIWARDEN_SITE_URL.rstrip("/") + reverse(name)


def send_code(code_id: str) -> str:
    """E-mail a one-time code to the requester: a use of their e-mail, so the gate decides."""
    code = VerificationCode.objects.select_related("request").defer("sealed_code").get(pk=code_id)
    request = code.request
    if code.used_at is not None or code.expires_at <= timezone.now():
        return "no longer needed"
    use = gate.Use("rights.code_mail", fields=("email",), extra={"request": request.reference})
    person = functools.partial(Person.objects.get, pk=request.person_id)  # read in the gate's transaction
    try:
        with gate.processing(person, PURPOSE, categories={CATEGORY}, use=use):
            current = VerificationCode.objects.select_related("request").get(pk=code.pk)
            digits, recipient = current.sealed_code, current.request.email
            if digits is None:  # sent already (or used meanwhile)
                return "already sent"
            if recipient is None:  # crypto-shredded meanwhile
                return "erased"
            language = current.request.language
            context = {
                "request": current.request,
                "code": digits,
                "minutes": int(CODE_LIFETIME.total_seconds() // 60),
                "purpose": current.purpose,
                "verify_url": _link("site:rights_verify", language),
                "status_url": _link("site:rights_status_code", language),
                "policy": load_declaration(),
            }
            with translation.override(language):
                subject = render_to_string("rights/email/code_subject.txt", context).strip()
                body = render_to_string("rights/email/code.txt", context)
    except gate.ProcessingRefused as refused:
        return f"refused: {refused.decision.reason}"  # recorded by the gate
    send(subject, body, [recipient], about=request.reference)
    with transaction.atomic(durable=True):
        VerificationCode.objects.filter(pk=code.pk).update(sealed_code=None)
    return "sent"


def send_receipt(request_id: str) -> str:
    """E-mail the requester that the request was received: reference, due date, provisional or not."""
    request = RightsRequest.objects.get(pk=request_id)
    if request.receipt_sent_at is not None:
        return "already sent"
    use = gate.Use("rights.receipt_mail", fields=("email",), extra={"request": request.reference})
    person = functools.partial(Person.objects.get, pk=request.person_id)
    try:
        with gate.processing(person, PURPOSE, categories={CATEGORY}, use=use):
            current = RightsRequest.objects.get(pk=request.pk)
            if current.receipt_sent_at is not None:
                return "already sent"
            recipient = current.email
            if recipient is None:
                return "erased"
            context = {
                "request": current,
                "status_url": _link("site:rights_status", current.language),
                "policy": load_declaration(),
            }
            with translation.override(current.language):
                subject = render_to_string("rights/email/receipt_subject.txt", context).strip()
                body = render_to_string("rights/email/receipt.txt", context)
    except gate.ProcessingRefused as refused:
        return f"refused: {refused.decision.reason}"
    send(subject, body, [recipient], about=current.reference)
    with transaction.atomic(durable=True):
        RightsRequest.objects.filter(pk=current.pk, receipt_sent_at__isnull=True).update(receipt_sent_at=timezone.now())
    return "sent"


@transaction.atomic(durable=True)
def record_mail_failure(object_id: str, *, task: str, attempts: int, error: str) -> None:
    """Every attempt failed: leave it in the audit log.  The task's object is the request (its receipt,
    a staff alert), one of its codes or one of its steps (the step's e-mail to the person)."""
    request = (
        RightsRequest.objects.select_related("person").filter(pk=object_id).first()
        or _request_of(VerificationCode.objects.filter(pk=object_id))
        or _request_of(RequestStep.objects.filter(pk=object_id))
    )
    if request is None:
        raise LookupError(f"no rights request, code or step {object_id}")
    record_event(
        EventType.MAIL_FAILED,
        person=request.person,
        purpose=PURPOSE,
        reason=error,
        extra={"request": request.reference, "attempts": attempts, "task": task},
    )


def _request_of(rows: QuerySet[VerificationCode] | QuerySet[RequestStep]) -> RightsRequest | None:
    row = rows.select_related("request__person").first()
    return row.request if row is not None else None


# --- rights-queue: the e-mails of the staff's steps, and the staff's reminders ----------------


def send_step(step_id: str) -> str:
    """E-mail the requester a step staff took: an extension (with its reason), a refusal (with its
    ground, reasons and the routes of complaint), a completion (with the result).  Once: the step's
    ``mailed_at`` says it went out."""
    step = RequestStep.objects.select_related("request").defer("note").get(pk=step_id)
    if step.mailed_at is not None:
        return "already sent"
    request = step.request
    use = gate.Use("rights.step_mail", fields=("email",), extra={"request": request.reference, "step": step.status})
    person = functools.partial(Person.objects.get, pk=request.person_id)
    try:
        with gate.processing(person, PURPOSE, categories={CATEGORY}, use=use):
            current = RequestStep.objects.select_related("request").get(pk=step.pk)
            if current.mailed_at is not None:
                return "already sent"
            recipient = current.request.email
            if recipient is None:
                return "erased"
            language = current.request.language
            context = {
                "request": current.request,
                "step": current,
                "note": current.note or "",
                "status_url": _link("site:rights_status", language),
                "archive_url": _link("site:rights_archive", language),
                "policy": load_declaration(),
                "archive_days": load_declaration().category("rights_archives").retention_days,
            }
            with translation.override(language):
                context["ground"] = current.request.get_refusal_ground_display()
                subject = render_to_string("rights/email/step_subject.txt", context).strip()
                body = render_to_string("rights/email/step.txt", context)
    except gate.ProcessingRefused as refused:
        return f"refused: {refused.decision.reason}"
    send(subject, body, [recipient], about=request.reference)
    with transaction.atomic(durable=True):
        RequestStep.objects.filter(pk=step.pk, mailed_at__isnull=True).update(mailed_at=timezone.now())
    return "sent"


def send_alert(request_id: str, kind: str) -> str:
    """E-mail staff that a request reached working day 10 (``reminder``: the assignee, or the privacy
    officer's address) or is overdue (``escalation``: the privacy officer and the assignee).  Holds no
    personal data: the reference, the kind and the dates, and the queue's link."""
    marker = "reminder_mailed_at" if kind == "reminder" else "escalation_mailed_at"
    request = RightsRequest.objects.select_related("assigned_to").get(pk=request_id)
    if getattr(request, marker) is not None:
        return "already sent"
    officer = settings.PIWARDEN_PRIVACY_OFFICER_EMAIL
    assignee = request.assigned_to.email if request.assigned_to is not None else ""
    recipients = [assignee or officer] if kind == "reminder" else list(dict.fromkeys(filter(None, [officer, assignee])))
    context = {
        "request": request,
        "kind": kind,
        "url": settings.PIWARDEN_SITE_URL.rstrip("/") + reverse("backoffice:rights_request", args=[request.reference]),
    }
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string("rights/email/alert_subject.txt", context).strip()
        body = render_to_string("rights/email/alert.txt", context)
    send(subject, body, recipients, about=request.reference)
    with transaction.atomic(durable=True):
        RightsRequest.objects.filter(pk=request.pk, **{f"{marker}__isnull": True}).update(**{marker: timezone.now()})
    return "sent"
