"""Background work for accounts: the e-mails, each a thin retry wrapper around its action."""

from __future__ import annotations

from django.tasks import task

from piwarden.accounts.mail import record_mail_failure, send_mail_row
from piwarden.mailing import with_retry


@task()
def send_account_mail(mail_id: str, attempt: int = 1) -> str:
    """E-mail an account holder (confirmation, reset, notices), if the gate allows it."""
    return with_retry(send_account_mail, mail_id, attempt, send_mail_row, give_up=record_mail_failure)
