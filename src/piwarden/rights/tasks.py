"""Background work for rights requests: thin retry wrappers around the mail actions.

The actions (:mod:`piwarden.rights.mail`) are idempotent, so running a task twice sends nothing
twice.  As for the consultation's e-mails (:mod:`piwarden.inquiries.tasks`), a failed send queues
its own next attempt with exponential back-off (1, 2, 4 … 60 minutes, ``MAX_ATTEMPTS`` in all);
the last failure is written to the audit log.  A code is useful for 10 minutes only, so its
e-mail is tried a few times within them and then given up (the person asks for a new one).

The arguments are opaque ids (a code's, a request's): a task's arguments are stored in plaintext.
"""

from __future__ import annotations

import functools

from django.tasks import task

from piwarden.mailing import MAX_ATTEMPTS, MailNotSent, with_retry
from piwarden.rights import fulfil
from piwarden.rights.mail import record_mail_failure, send_alert, send_code, send_receipt, send_step

CODE_MAIL_ATTEMPTS = 4  # after 1, 2 and 4 minutes: a code lives 10 minutes


@task()
def send_code_mail(code_id: str, attempt: int = 1) -> str:
    """E-mail a one-time code to the requester."""
    return with_retry(
        send_code_mail, code_id, attempt, send_code, give_up=record_mail_failure, attempts=CODE_MAIL_ATTEMPTS
    )


@task()
def send_receipt_mail(request_id: str, attempt: int = 1) -> str:
    """E-mail the requester that their request was received, with its reference and due date."""
    return with_retry(send_receipt_mail, request_id, attempt, send_receipt, give_up=record_mail_failure)


# --- rights-queue ---------------------------------------------------------------------------


@task()
def send_step_mail(step_id: str, attempt: int = 1) -> str:
    """E-mail the requester an extension, a refusal or a completion; then run what waits for it
    (a deletion's erasure: after the e-mail, or after its last failed attempt)."""
    try:
        outcome = with_retry(send_step_mail, step_id, attempt, send_step, give_up=record_mail_failure)
    except MailNotSent:
        if attempt >= MAX_ATTEMPTS:
            fulfil.after_step_mail(step_id)
        raise
    fulfil.after_step_mail(step_id)
    return outcome


@task()
def send_reminder_mail(request_id: str, attempt: int = 1) -> str:
    """Remind the assignee (or the privacy officer) that a request reached working day 10."""
    remind = functools.partial(send_alert, kind="reminder")
    return with_retry(send_reminder_mail, request_id, attempt, remind, give_up=record_mail_failure)


@task()
def send_escalation_mail(request_id: str, attempt: int = 1) -> str:
    """Tell the privacy officer (and the assignee) that a request is overdue."""
    escalate = functools.partial(send_alert, kind="escalation")
    return with_retry(send_escalation_mail, request_id, attempt, escalate, give_up=record_mail_failure)
