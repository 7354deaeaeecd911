"""Background work for staff accounts: the new-device e-mail, sent once and retried while the
mail server is down (:func:`piwarden.mailing.with_retry`)."""

from __future__ import annotations

from django.tasks import task

from piwarden.mailing import with_retry
from piwarden.staff.mail import record_mail_failure, send_new_device_alert


@task()
def send_new_device_mail(device_id: str, attempt: int = 1) -> str:
    """Tell a staff member their account was signed in to from a browser it never used before."""
    return with_retry(send_new_device_mail, device_id, attempt, send_new_device_alert, give_up=record_mail_failure)
