"""The e-mails a consultation triggers, through a real SMTP server (aiosmtpd on 127.0.0.1).

Django's test runner replaces every MAILERS entry with the in-memory locmem backend;
these tests point ``MAILERS["default"]`` back at Django's SMTP backend (the production
``PIWARDEN_EMAIL=smtp`` configuration) and read what the server really received.

Retries: ``django-tasks-db`` does not retry a failed task.  The worker marks it
FAILED with the exception's class and traceback, and no later worker run picks it
up again (its ``@retry`` decorator only retries writing the status row when the
database is locked).  The operator's path is to enqueue the failed task again
through Django's Tasks API; our tasks are idempotent, so re-enqueueing an
acknowledgement that already went out sends nothing.  ``test_a_failed_send_is_not_lost``
shows both halves.
"""

from __future__ import annotations

import asyncio
import threading
from http import HTTPStatus
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.tasks import TaskResultStatus
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import AuditEvent
from piwarden.inquiries.mail import send_acknowledgement, send_sales_notice
from piwarden.inquiries.models import Inquiry
from piwarden.inquiries.tasks import acknowledge_inquiry
from piwarden.mailing import MAX_ATTEMPTS
from piwarden.policy.declaration import load_declaration
from tests.conftest import consultation_data
from tests.smtp import Collector

# The worker closes "old" connections between tasks, which ends the test transaction
# of a plain ``db`` test: tests that run it need real commits.
pytestmark = pytest.mark.django_db(transaction=True)

PEOPLE = {
    "en": {
        "name": "Alice Smith",
        "email": "alice.smith@example.com",
        "phone": "+44 20 7946 0958",
        "company": "Example Trading Ltd",
        "position": "Head of IT",
        "region": "GB",
    },
    "zh-hans": {
        "name": "王芳",
        "email": "wang.fang@example.com",
        "phone": "13912345678",
        "company": "示例网络有限公司",
        "position": "安全总监",
        "region": "CN",
    },
}


def run_worker(verbosity: int = 0) -> None:
    call_command("db_worker", batch=True, startup_delay=False, verbosity=verbosity)


def submit(language: str) -> Inquiry:
    person = PEOPLE[language]
    url = "/en/consultation/" if language == "en" else "/consultation/"
    response = Client().post(url, consultation_data(**person))
    assert response.status_code == HTTPStatus.FOUND
    return Inquiry.objects.get(reference=response["Location"].split("ref=")[1].split("&")[0])


def personal_values(person: dict[str, str]) -> list[str]:
    values = [person["name"], person["email"], person["email"].split("@")[0], person["company"]]
    digits = "".join(c for c in person["phone"] if c.isdigit())
    return [*values, digits[-8:]]  # the subscriber part of the number, however it is formatted


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def test_each_person_gets_one_acknowledgement_in_their_language(smtp, settings):
    inquiries = {language: submit(language) for language in PEOPLE}
    assert smtp.collector.received == []  # nothing is sent inside the request
    run_worker()

    policy = load_declaration()
    for language, inquiry in inquiries.items():
        person = PEOPLE[language]
        acknowledgements = smtp.collector.to(person["email"])
        assert len(acknowledgements) == 1
        ack = acknowledgements[0]
        assert ack.rcpt_tos == [person["email"]]  # nobody else on the envelope
        assert ack.mail_from == settings.DEFAULT_FROM_EMAIL
        assert inquiry.reference in ack.subject
        assert inquiry.reference in ack.body
        privacy_url = settings.PIWARDEN_SITE_URL + ("/en/privacy/" if language == "en" else "/privacy/")
        assert privacy_url in ack.body
        assert policy.controller.hotline in ack.body
        assert policy.controller.email in ack.body
        if language == "en":
            assert ack.subject == f"We received your consultation request {inquiry.reference}"
            assert not is_chinese(ack.subject + ack.body.replace(policy.controller.name.zh_hans, ""))
        else:
            assert is_chinese(ack.subject)
            assert "consultation request" not in ack.subject + ack.body
        inquiry.refresh_from_db()
        assert inquiry.acknowledged_at is not None


def test_the_sales_notice_carries_the_reference_and_no_personal_data(smtp, settings):
    inquiries = [submit(language) for language in PEOPLE]
    run_worker()
    notices = smtp.collector.to(settings.PIWARDEN_SALES_EMAIL)
    assert len(notices) == len(inquiries)
    for inquiry in inquiries:
        (notice,) = [n for n in notices if inquiry.reference in n.subject]
        assert notice.rcpt_tos == [settings.PIWARDEN_SALES_EMAIL]
        assert f"{settings.PIWARDEN_SITE_URL}/backoffice/inquiries/{inquiry.reference}/" in notice.body
        text = str(notice.message)  # headers and every part, not only the visible body
        for person in PEOPLE.values():
            for value in personal_values(person):
                assert value not in text


def test_a_second_worker_run_sends_nothing_again(smtp):
    for language in PEOPLE:
        submit(language)
    run_worker()
    sent = len(smtp.collector.received)
    assert sent == 2 * len(PEOPLE)  # one acknowledgement and one sales notice each
    run_worker()
    assert len(smtp.collector.received) == sent


def make_retries_due() -> None:
    """Time passes: every queued retry becomes due now."""
    DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=timezone.now())


def test_a_failed_send_is_retried_until_it_goes_out(smtp):
    smtp.stop()  # the mail server is down when the worker runs
    inquiry = submit("en")
    run_worker()

    inquiry.refresh_from_db()
    assert inquiry.acknowledged_at is None  # the send failed, so nothing claims it was sent
    failed = DBTaskResult.objects.filter(status=TaskResultStatus.FAILED)
    assert {r.task_path.rsplit(".", 1)[1] for r in failed} == {"acknowledge_inquiry", "notify_sales"}
    assert {r.exception_class_path for r in failed} == {"piwarden.mailing.MailNotSent"}
    retries = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
    assert {r.args_kwargs["args"][1] for r in retries} == {2}  # attempt 2 of each, queued for later
    assert all(r.run_after > timezone.now() for r in retries)

    smtp.start()
    run_worker()
    assert smtp.collector.received == []  # not due yet: back-off

    make_retries_due()
    run_worker()
    assert len(smtp.collector.to(PEOPLE["en"]["email"])) == 1
    inquiry.refresh_from_db()
    assert inquiry.acknowledged_at is not None
    assert inquiry.sales_notified_at is not None

    # Enqueueing the acknowledgement again sends nothing twice.
    acknowledge_inquiry.enqueue(str(inquiry.pk))
    run_worker()
    assert len(smtp.collector.to(PEOPLE["en"]["email"])) == 1


def test_after_the_last_attempt_the_failure_is_audited(smtp):
    smtp.stop()
    inquiry = submit("en")
    for _ in range(MAX_ATTEMPTS):
        run_worker()
        make_retries_due()
    assert not DBTaskResult.objects.filter(status=TaskResultStatus.READY).exists()  # no endless retries
    assert DBTaskResult.objects.filter(status=TaskResultStatus.FAILED).count() == 2 * MAX_ATTEMPTS
    failures = AuditEvent.objects.filter(event_type="mail.failed", person=inquiry.person)
    assert failures.count() == 2
    assert all(e.extra["inquiry"] == inquiry.reference for e in failures)


@pytest.mark.duty("SEC-01")
def test_a_refused_recipient_leaves_no_address_in_the_task_table(smtp, caplog):
    """Mail servers echo the refused address; the failure record must not keep it in plaintext."""
    smtp.collector.refuse.add(PEOPLE["en"]["email"])
    inquiry = submit("en")
    run_worker(verbosity=1)  # as in production: failures are logged with their traceback

    inquiry.refresh_from_db()
    assert inquiry.acknowledged_at is None
    (result,) = DBTaskResult.objects.filter(task_path__endswith="acknowledge_inquiry", status=TaskResultStatus.FAILED)
    assert result.status == TaskResultStatus.FAILED
    stored = " ".join(str(v) for v in DBTaskResult.objects.values_list().get(pk=result.pk))
    assert inquiry.reference in stored  # the failure still says which request it was
    # The site's own log (not the test SMTP server's, which logs every envelope it sees).
    ours = [r for r in caplog.records if not r.name.startswith("mail.")]
    assert any(r.name == "django.tasks" and r.exc_info for r in ours)  # the failure is logged
    logged = "\n".join(caplog.handler.format(r) for r in ours)
    for value in personal_values(PEOPLE["en"]):
        assert value not in stored
        assert value not in logged


class StallingCollector(Collector):
    """Holds every message at DATA until the test lets it through, as a slow mail server does."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802  # aiosmtpd's hook name
        self.reached.set()
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        return await super().handle_DATA(server, session, envelope)


def test_a_slow_mail_server_holds_up_no_visitor(smtp):
    """While the acknowledgement waits for the mail server, no transaction is open: on SQLite an
    open one would hold the site's only write lock, and a visitor's request would wait its 5 s
    and fail."""
    first = submit("en")
    smtp.stop()
    stalling = StallingCollector()
    smtp.collector = stalling
    smtp.start()
    outcome: list[str] = []

    def acknowledge() -> None:
        try:
            outcome.append(send_acknowledgement(str(first.pk)))
        finally:
            connection.close()

    sender = threading.Thread(target=acknowledge)
    sender.start()
    try:
        assert stalling.reached.wait(10), "the acknowledgement did not reach the mail server"
        second = submit("zh-hans")  # stored while the mail server still has the first message
        assert Inquiry.objects.filter(pk=second.pk).exists()
    finally:
        stalling.release.set()
        sender.join(30)
    assert outcome == ["sent"]
    assert [r.rcpt_tos for r in stalling.received] == [[PEOPLE["en"]["email"]]]
    first.refresh_from_db()
    assert first.acknowledged_at is not None
    assert AuditEvent.objects.filter(event_type="inquiry.acknowledged", person=first.person).count() == 1


def test_the_mail_actions_refuse_to_run_inside_a_transaction(smtp):
    inquiry = submit("en")
    for action in (send_acknowledgement, send_sales_notice):
        with pytest.raises(RuntimeError), transaction.atomic():
            action(str(inquiry.pk))
    assert smtp.collector.received == []
