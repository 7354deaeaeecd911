"""The e-mails to account holders, as actions (see :mod:`piwarden.inquiries.mail` for the three
steps: read and render under the gate, send with no transaction open, record).

The links are made when the e-mail is rendered (:mod:`piwarden.accounts.tokens`): the task's
arguments hold only the mail row's id, never a token or an address.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from piwarden.accounts import tokens
from piwarden.accounts.models import CATEGORY, PURPOSE, AccountMail, MailKind
from piwarden.audit.log import EventType, record_event
from piwarden.mailing import send
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate


def _link(name: str, language: str, token: str = "") -> str:
    with translation.override(language):
        path = reverse(name)
    return f"{settings.PIWARDEN_SITE_URL}{path}" + (f"?token={token}" if token else "")


def send_mail_row(mail_id: str) -> str:
    mail = AccountMail.objects.select_related("account").filter(pk=mail_id).first()
    if mail is None:
        return "gone"
    if mail.sent_at is not None:
        return "already sent"
    if mail.account is None:  # a reset asked for an address without an account
        AccountMail.objects.filter(pk=mail.pk).delete()
        return "no account"
    account = mail.account
    use = gate.Use("account.mail", fields=("email",), extra={"kind": mail.kind})
    person = functools.partial(Person.objects.get, pk=account.person_id)
    try:
        with gate.processing(person, PURPOSE, categories={CATEGORY}, use=use):
            recipient = account.email
            if recipient is None:
                return "erased"
            context = {"policy": load_declaration(), "site_url": settings.PIWARDEN_SITE_URL, "account": account}
            kind = mail.kind
            if kind == MailKind.ALREADY_REGISTERED and account.email_verified_at is None:
                kind = MailKind.VERIFY  # signing up again is how a new confirmation link is asked for
            if kind == MailKind.VERIFY:
                context["link"] = _link("accounts:verify", account.language, tokens.verify_token(account))
            elif kind == MailKind.RESET:
                context["link"] = _link("accounts:reset_new", account.language, tokens.reset_token(account))
            elif kind == MailKind.PASSWORD_CHANGED:
                context["link"] = _link("accounts:reset", account.language)
            else:
                context["link"] = _link("accounts:sign_in", account.language)
            with translation.override(account.language):
                subject = render_to_string(f"accounts/email/{kind}_subject.txt", context).strip()
                body = render_to_string(f"accounts/email/{kind}.txt", context)
    except gate.ProcessingRefused as refused:
        return f"refused: {refused.decision.reason}"
    send(subject, body, [recipient], about=f"account mail {mail.pk}")
    _record_sent(mail)
    return "sent"


@transaction.atomic(durable=True)
def _record_sent(mail: AccountMail) -> None:
    marked = AccountMail.objects.filter(pk=mail.pk, sent_at__isnull=True).update(sent_at=timezone.now())
    if marked and mail.account is not None:
        record_event(
            EventType.ACCOUNT_MAIL_SENT,
            person=Person(pk=mail.account.person_id),
            purpose=PURPOSE,
            fields=["email"],
            extra={"kind": mail.kind},
        )


@transaction.atomic(durable=True)
def record_mail_failure(mail_id: str, *, task: str, attempts: int, error: str) -> None:
    mail = AccountMail.objects.select_related("account").filter(pk=mail_id).first()
    person = Person(pk=mail.account.person_id) if mail is not None and mail.account is not None else None
    record_event(
        EventType.MAIL_FAILED,
        person=person,
        purpose=PURPOSE,
        reason=error,
        extra={"account_mail": mail_id, "attempts": attempts, "task": task},
    )
