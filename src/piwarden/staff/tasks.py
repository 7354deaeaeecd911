"""Background work for staff accounts: the new-device, enrolment, training-notice and access-review
e-mails, each sent once and retried while the mail server is down (:func:`piwarden.mailing.with_retry`).

The arguments are ids (a task's arguments are stored in plaintext); the enrolment link's token is
made when the e-mail is sent, from the account's state (never stored).
"""

from __future__ import annotations

from django.tasks import task

from piwarden.mailing import with_retry
from piwarden.staff.mail import (
    record_enrolment_mail_failure,
    record_mail_failure,
    record_review_mail_failure,
    record_training_mail_failure,
    send_enrolment,
    send_new_device_alert,
    send_review_opened,
    send_training_notice,
)


@task()
def send_new_device_mail(device_id: str, attempt: int = 1) -> str:
    """Tell a staff member their account was signed in to from a browser it never used before."""
    return with_retry(send_new_device_mail, device_id, attempt, send_new_device_alert, give_up=record_mail_failure)


@task()
def send_enrolment_mail(user_id: str, attempt: int = 1) -> str:
    """E-mail a new staff member the link that sets their password and authenticator."""
    return with_retry(send_enrolment_mail, user_id, attempt, send_enrolment, give_up=record_enrolment_mail_failure)


@task()
def send_training_notice_mail(notice_id: str, attempt: int = 1) -> str:
    """E-mail a staff member that their training attestation expires soon, or has expired."""
    return with_retry(
        send_training_notice_mail, notice_id, attempt, send_training_notice, give_up=record_training_mail_failure
    )


@task()
def send_review_opened_mail(review_id: str, attempt: int = 1) -> str:
    """Tell the reviewers that an access review opened, and its deadline."""
    return with_retry(
        send_review_opened_mail, review_id, attempt, send_review_opened, give_up=record_review_mail_failure
    )
