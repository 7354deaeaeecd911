"""Background work of the monitoring: the alert e-mail, retried as every e-mail is
(:func:`piwarden.mailing.with_retry`).  The argument is the alert's id, nothing about a person."""

from __future__ import annotations

from django.tasks import task

from piwarden.mailing import with_retry
from piwarden.monitoring.mail import record_mail_failure, send_alert


@task()
def send_alert_mail(alert_id: str, attempt: int = 1) -> str:
    """E-mail the security role that an alert was raised."""
    return with_retry(send_alert_mail, alert_id, attempt, send_alert, give_up=record_mail_failure)
