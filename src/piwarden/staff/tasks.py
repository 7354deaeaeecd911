"""Background work for staff governance: the training notice's e-mail and the access review's, retried
as every e-mail is (:func:`piwarden.mailing.with_retry`).  The argument is an id (stored in plaintext)."""

from __future__ import annotations

from django.tasks import task

from piwarden.mailing import with_retry
from piwarden.staff.mail import (
    record_mail_failure,
    record_review_mail_failure,
    send_review_opened,
    send_training_notice,
)


@task()
def send_training_notice_mail(notice_id: str, attempt: int = 1) -> str:
    """E-mail a staff member that their training attestation expires soon, or has expired."""
    return with_retry(send_training_notice_mail, notice_id, attempt, send_training_notice, give_up=record_mail_failure)


@task()
def send_review_opened_mail(review_id: str, attempt: int = 1) -> str:
    """Tell the reviewers that an access review opened, and its deadline."""
    return with_retry(
        send_review_opened_mail, review_id, attempt, send_review_opened, give_up=record_review_mail_failure
    )
