"""Background work for consultation requests: thin retry wrappers around the mail actions.

The actions (:mod:`piwarden.inquiries.mail`) are idempotent, so running a task twice sends
nothing twice.

django-tasks-db never retries a failed task, and "nothing acknowledged is lost" needs the
e-mail to go out eventually: when sending fails, the task queues its own next attempt with
exponential back-off (1, 2, 4 … 60 minutes, ``MAX_ATTEMPTS`` in all) before failing this run.
The last failure is written to the audit log so that staff can follow up by phone.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.tasks import Task, task
from django.utils import timezone

from piwarden.inquiries.mail import MailNotSent, record_mail_failure, send_acknowledgement, send_sales_notice

MAX_ATTEMPTS = 8


def _with_retry(task_: Task[[str, int], str], inquiry_id: str, attempt: int, action: Callable[[str], str]) -> str:
    try:
        return action(inquiry_id)
    except MailNotSent as exc:
        if attempt < MAX_ATTEMPTS:
            delay = datetime.timedelta(minutes=min(2 ** (attempt - 1), 60))
            task_.using(run_after=timezone.now() + delay).enqueue(inquiry_id, attempt + 1)  # committed on its own
        else:
            record_mail_failure(inquiry_id, task=task_.name, attempts=attempt, error=str(exc))
        raise


@task()
def acknowledge_inquiry(inquiry_id: str, attempt: int = 1) -> str:
    """E-mail the person that their request arrived (if the gate allows it)."""
    return _with_retry(acknowledge_inquiry, inquiry_id, attempt, send_acknowledgement)


@task()
def notify_sales(inquiry_id: str, attempt: int = 1) -> str:
    """Tell the sales inbox a request arrived."""
    return _with_retry(notify_sales, inquiry_id, attempt, send_sales_notice)
