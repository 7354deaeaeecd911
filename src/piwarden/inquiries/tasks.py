"""Background work for consultation requests: thin retry wrappers around the mail actions.

The actions (:mod:`piwarden.inquiries.mail`) are idempotent, so running a task twice sends
nothing twice.

django-tasks-db never retries a failed task, and "nothing acknowledged is lost" needs the
e-mail to go out eventually: when sending fails, the task queues its own next attempt with
exponential back-off (1, 2, 4 … 60 minutes, ``MAX_ATTEMPTS`` in all) before failing this run.
The last failure is written to the audit log so that staff can follow up by phone.
"""

from __future__ import annotations

from django.tasks import task

from piwarden.inquiries.mail import record_mail_failure, send_acknowledgement, send_sales_notice
from piwarden.mailing import with_retry


@task()
def acknowledge_inquiry(inquiry_id: str, attempt: int = 1) -> str:
    """E-mail the person that their request arrived (if the gate allows it)."""
    return with_retry(acknowledge_inquiry, inquiry_id, attempt, send_acknowledgement, give_up=record_mail_failure)


@task()
def notify_sales(inquiry_id: str, attempt: int = 1) -> str:
    """Tell the sales inbox a request arrived."""
    return with_retry(notify_sales, inquiry_id, attempt, send_sales_notice, give_up=record_mail_failure)
