"""Background work for staff accounts: the new-device e-mail and the enrolment e-mail, each sent
once and retried while the mail server is down (:func:`piwarden.mailing.with_retry`).

The enrolment task's argument is the account's id: a task's arguments are stored in plaintext,
and the link's token is made when the e-mail is sent, from the account's state (never stored).
"""

from __future__ import annotations

from django.tasks import task

from piwarden.mailing import with_retry
from piwarden.staff.mail import (
    record_enrolment_mail_failure,
    record_mail_failure,
    send_enrolment,
    send_new_device_alert,
)


@task()
def send_new_device_mail(device_id: str, attempt: int = 1) -> str:
    """Tell a staff member their account was signed in to from a browser it never used before."""
    return with_retry(send_new_device_mail, device_id, attempt, send_new_device_alert, give_up=record_mail_failure)


@task()
def send_enrolment_mail(user_id: str, attempt: int = 1) -> str:
    """E-mail a new staff member the link that sets their password and authenticator."""
    return with_retry(send_enrolment_mail, user_id, attempt, send_enrolment, give_up=record_enrolment_mail_failure)
