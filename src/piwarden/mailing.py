"""Sending an e-mail, and trying again later: what every app's mail actions and tasks share.

An app's mail action (``inquiries.mail``, ``rights.mail``) reads and renders under the gate, then
calls :func:`send` with no transaction open, then records that the message went out.  Its task is
a thin wrapper: :func:`with_retry` runs the action and, when sending failed, queues the task's own
next attempt with exponential back-off (1, 2, 4 … 60 minutes) — django-tasks-db never retries a
failed task — until ``attempts`` are used up, when the app's ``give_up`` writes the failure to the
audit log so that staff follow up another way.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence

from django.core.mail import EmailMultiAlternatives
from django.tasks import Task
from django.utils import timezone

MAX_ATTEMPTS = 8


class MailNotSent(Exception):
    """Sending failed; the message names what the e-mail was about and the error class, never the address."""


def send(subject: str, body: str, recipients: Sequence[str], *, about: str) -> None:
    """Send one message; :class:`MailNotSent` when the mail server cannot be reached or refuses it."""
    try:
        EmailMultiAlternatives(subject, body, to=list(recipients)).send()
    except OSError as exc:  # socket and SMTP errors (smtplib.SMTPException is an OSError)
        # SMTP errors quote the recipient (SMTPRecipientsRefused, server replies), and the task
        # backend stores the traceback in plaintext and logs it: keep the class only.
        error = f"{type(exc).__module__}.{type(exc).__qualname__}"
        raise MailNotSent(f"{error} while mailing about {about}") from None


def with_retry(
    task_: Task[[str, int], str],
    object_id: str,
    attempt: int,
    action: Callable[[str], str],
    *,
    give_up: Callable[..., None],
    attempts: int = MAX_ATTEMPTS,
) -> str:
    """Run ``action(object_id)``; on :class:`MailNotSent` queue attempt ``attempt + 1`` of ``task_``
    later (committed on its own), or, at the last attempt, call ``give_up``; then re-raise, so this
    run of the task is recorded as failed."""
    try:
        return action(object_id)
    except MailNotSent as exc:
        if attempt < attempts:
            delay = datetime.timedelta(minutes=min(2 ** (attempt - 1), 60))
            task_.using(run_after=timezone.now() + delay).enqueue(object_id, attempt + 1)
        else:
            give_up(object_id, task=task_.name, attempts=attempt, error=str(exc))
        raise
