"""Background work for staff accounts: the enrolment e-mail, tried again later when sending fails.

The argument is the account's id: a task's arguments are stored in plaintext, and the link's
token is made when the e-mail is sent, from the account's state (never stored).
"""

from __future__ import annotations

from django.tasks import task

from piwarden.mailing import with_retry
from piwarden.staff.mail import record_enrolment_mail_failure, send_enrolment


@task()
def send_enrolment_mail(user_id: str, attempt: int = 1) -> str:
    """E-mail a new staff member the link that sets their password and authenticator."""
    return with_retry(send_enrolment_mail, user_id, attempt, send_enrolment, give_up=record_enrolment_mail_failure)
