"""Background work for rights requests: thin retry wrappers around the mail actions.

The actions (:mod:`piwarden.rights.mail`) are idempotent, so running a task twice sends nothing
twice.  As for the consultation's e-mails (:mod:`piwarden.inquiries.tasks`), a failed send queues
its own next attempt with exponential back-off (1, 2, 4 … 60 minutes, ``MAX_ATTEMPTS`` in all);
the last failure is written to the audit log.  A code is useful for 10 minutes only, so its
e-mail is tried a few times within them and then given up (the person asks for a new one).

The arguments are opaque ids (a code's, a request's): a task's arguments are stored in plaintext.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable

from django.tasks import Task, task
from django.utils import timezone

from piwarden.rights import fulfil
from piwarden.rights.mail import (
    MailNotSent,
    record_mail_failure,
    record_step_mail_failure,
    send_alert,
    send_code,
    send_receipt,
    send_step,
)

MAX_ATTEMPTS = 8
CODE_MAIL_ATTEMPTS = 4  # after 1, 2 and 4 minutes: a code lives 10 minutes


def _with_retry(
    task_: Task[[str, int], str], object_id: str, attempt: int, action: Callable[[str], str], attempts: int
) -> str:
    try:
        return action(object_id)
    except MailNotSent as exc:
        if attempt < attempts:
            delay = datetime.timedelta(minutes=min(2 ** (attempt - 1), 60))
            task_.using(run_after=timezone.now() + delay).enqueue(object_id, attempt + 1)  # committed on its own
        else:
            record_mail_failure(object_id, task=task_.name, attempts=attempt, error=str(exc))
        raise


@task()
def send_code_mail(code_id: str, attempt: int = 1) -> str:
    """E-mail a one-time code to the requester."""
    return _with_retry(send_code_mail, code_id, attempt, send_code, CODE_MAIL_ATTEMPTS)


@task()
def send_receipt_mail(request_id: str, attempt: int = 1) -> str:
    """E-mail the requester that their request was received, with its reference and due date."""
    return _with_retry(send_receipt_mail, request_id, attempt, send_receipt, MAX_ATTEMPTS)


# --- rights-queue ---------------------------------------------------------------------------


def _step_with_retry(task_: Task[[str, int], str], object_id: str, attempt: int, action: Callable[[str], str]) -> str:
    try:
        return action(object_id)
    except MailNotSent as exc:
        if attempt < MAX_ATTEMPTS:
            delay = datetime.timedelta(minutes=min(2 ** (attempt - 1), 60))
            task_.using(run_after=timezone.now() + delay).enqueue(object_id, attempt + 1)
        else:
            record_step_mail_failure(object_id, task=task_.name, attempts=attempt, error=str(exc))
        raise


@task()
def send_step_mail(step_id: str, attempt: int = 1) -> str:
    """E-mail the requester an extension, a refusal or a completion; then run what waits for it
    (a deletion's erasure: after the e-mail, or after its last failed attempt)."""
    try:
        outcome = _step_with_retry(send_step_mail, step_id, attempt, send_step)
    except MailNotSent:
        if attempt >= MAX_ATTEMPTS:
            fulfil.after_step_mail(step_id)
        raise
    fulfil.after_step_mail(step_id)
    return outcome


@task()
def send_reminder_mail(request_id: str, attempt: int = 1) -> str:
    """Remind the assignee (or the privacy officer) that a request reached working day 10."""
    return _step_with_retry(send_reminder_mail, request_id, attempt, functools.partial(send_alert, kind="reminder"))


@task()
def send_escalation_mail(request_id: str, attempt: int = 1) -> str:
    """Tell the privacy officer (and the assignee) that a request is overdue."""
    return _step_with_retry(send_escalation_mail, request_id, attempt, functools.partial(send_alert, kind="escalation"))
