"""Shared by the accounts tests: a visitor opening, confirming and signing in to an account."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.core import mail
from django.core.management import call_command
from django.tasks import TaskResultStatus
from django.test import Client
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

from piwarden.accounts.models import Account
from piwarden.vault.blind import email_index
from tests.smtp import SMTPServer

PASSWORD = "correct horse battery staple"  # a test password, 28 characters


def sign_up_data(**overrides: Any) -> dict[str, str]:
    data = {
        "email": "li.na@example.com",
        "phone": "",
        "date_of_birth": "1990-05-17",
        "guardian_email": "",
        "password": PASSWORD,
        "accept": "on",
        "captcha_0": "x",
        "captcha_1": "PASSED",
    }
    data.update(overrides)
    return data


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)


def link_in_mail(address: str, path: str) -> str:
    """The path and query of the last e-mailed link to ``address`` that leads to ``path``."""
    for message in reversed(mail.outbox):
        if address in message.to:
            for url in re.findall(r"https?://\S+", message.body):
                parts = urlsplit(url)
                if parts.path.endswith(path):
                    return f"{parts.path}?{parts.query}" if parts.query else parts.path
    raise AssertionError(f"no link to {path} was e-mailed to {address}")


def account_of(address: str) -> Account:
    return Account.objects.get(email_index=email_index(address))


def open_account(client: Client, language: str = "en", **overrides: Any) -> Account:
    """Sign up, confirm by the e-mailed link; the account (active unless a child's)."""
    prefix = "/en" if language == "en" else ""
    data = sign_up_data(**overrides)
    response = client.post(f"{prefix}/account/sign-up/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    run_worker()
    link = link_in_mail(data["email"], "/account/verify/")
    token = link.split("token=")[1]
    assert client.post(f"{prefix}/account/verify/", {"token": token}).status_code == 200
    return account_of(data["email"])


def signed_in(client: Client, email: str = "li.na@example.com", password: str = PASSWORD, language: str = "en") -> Any:
    prefix = "/en" if language == "en" else ""
    return client.post(f"{prefix}/account/sign-in/", {"email": email, "password": password})


def run_account_tasks() -> None:
    """The accounts' queued tasks (their e-mails), run in this process and transaction as the worker would."""
    jobs = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path__startswith="piwarden.accounts.")
    for job in list(jobs.order_by("enqueued_at", "id")):
        job.delete()
        import_string(job.task_path).call(*job.args_kwargs["args"], **job.args_kwargs["kwargs"])


def confirmed_account(smtp: SMTPServer, email: str, language: str = "en") -> Account:
    """Sign up through the page and confirm by the link the real SMTP server received; nothing else."""
    prefix = "/en" if language == "en" else ""
    client = Client()
    assert client.post(f"{prefix}/account/sign-up/", sign_up_data(email=email)).status_code == 302
    run_account_tasks()
    [token] = re.findall(r"/account/verify/\?token=(\S+)", smtp.collector.to(email)[-1].body)
    assert client.post(f"{prefix}/account/verify/", {"token": token}).status_code == 200
    return account_of(email)
