"""Notices to the persons affected (PIPL 57, SEC-05; CHD-06): exactly once per person through the
outbox, also when the worker stops in the middle and runs again (killed while the mail server
answers, the one message in doubt goes again: the person may get two, nobody gets none); chosen by a list of addresses;
guardians of minors (the children's app's consented guardians) by e-mail once each, and a clear
warning where no source of guardians exists."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from http import HTTPStatus

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import AuditEvent, EventType
from piwarden.incidents.models import Incident, Notice, Recipient
from piwarden.people import guardians
from piwarden.people.actions import erase_person
from piwarden.people.models import Person
from piwarden.vault import blind
from tests.accounts.helpers import sign_up_data
from tests.commands import killed_when
from tests.incidents.console import consulted, deliver, notice_form, page, record, report_form, step
from tests.rights.staffing import console

pytestmark = pytest.mark.django_db

PEOPLE = ("a.one@example.com", "b.two@example.com", "c.three@example.com")


def ready(client, **overrides) -> str:
    slug = record(client, **overrides)
    step(client, slug, "activate_plan")
    step(client, slug, "contain")
    assert client.post(page(slug, "report/"), report_form()).status_code == HTTPStatus.FOUND
    assert client.post(page(slug, "notice/"), notice_form()).status_code == HTTPStatus.FOUND
    return slug


def address_of(notice: Notice) -> str:
    """The address a notice goes to, found by the person's blind index (nothing decrypted)."""
    return next(
        a for a in PEOPLE if Person.objects.filter(pk=notice.person_id, email_index=blind.email_index(a)).exists()
    )


def received(smtp) -> list[str]:
    return sorted(r for m in smtp.collector.received for r in m.rcpt_tos)


@pytest.mark.duty("SEC-05")
def test_a_worker_that_stops_in_the_middle_sends_nobody_twice(carol, smtp):
    consulted(*PEOPLE)
    client = console(carol)
    slug = ready(client)
    assert client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"}).status_code == 302
    first, second, third = map(address_of, Notice.objects.filter(incident__slug=slug).order_by("id"))
    # The mail server refuses the second notice: the run stops there, after the first went out and
    # was recorded, as a worker killed at that point would.
    smtp.collector.refuse = {second}
    assert deliver() == ["failed: MailNotSent"]
    assert received(smtp) == [first]
    assert Notice.objects.filter(incident__slug=slug, outcome="sent").count() == 1
    # The worker died and its queued retry was lost: the officer presses send again.
    DBTaskResult.objects.filter(task_path__startswith="piwarden.incidents.").delete()
    smtp.collector.refuse = set()
    assert client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"}).status_code == 302
    assert Notice.objects.filter(incident__slug=slug).count() == 3  # nobody queued twice
    assert deliver() == ["sent: 2"]
    assert received(smtp) == sorted([first, second, third])  # each exactly once
    assert deliver() == []
    assert AuditEvent.objects.filter(event_type=EventType.INCIDENT_NOTICE_SENT).count() == 3
    [queued, again] = AuditEvent.objects.filter(event_type=EventType.INCIDENT_NOTICES_QUEUED).order_by("id")
    assert (queued.extra["new"], again.extra["new"]) == (3, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.duty("SEC-05")
def test_a_worker_killed_while_the_mail_server_answers_sends_that_one_again_and_nobody_else_twice(carol, smtp):
    consulted(*PEOPLE)
    client = console(carol)
    slug = ready(client)
    assert set(deliver("piwarden.")) == {"sent"}  # the consultations' own e-mails: not this test's
    smtp.collector.received.clear()
    assert client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"}).status_code == 302
    # The mail server keeps the second notice but holds back its answer: the worker is killed then.
    smtp.collector.hold = 2
    worker = ["worker", "--batch", "--no-audit-sealer"]
    assert killed_when(worker, lambda: len(smtp.collector.received) >= 2, **smtp.env) == -signal.SIGKILL
    [in_doubt] = smtp.collector.received[1].rcpt_tos
    assert Notice.objects.filter(incident__slug=slug, outcome="sent").count() == 1
    # The officer presses send again: the notices not recorded go out, the one in doubt among them.
    assert client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"}).status_code == 302
    assert deliver() == ["sent: 2"]
    assert received(smtp) == sorted([*PEOPLE, in_doubt])
    assert Notice.objects.filter(incident__slug=slug, outcome="sent").count() == 3
    assert AuditEvent.objects.filter(event_type=EventType.INCIDENT_NOTICE_SENT).count() == 3


@pytest.mark.duty("SEC-05")
def test_a_list_of_addresses_chooses_persons_and_an_unknown_one_changes_nothing(carol, smtp):
    consulted(*PEOPLE)
    client = console(carol)
    slug = ready(client, categories=["staff_accounts"])  # a category that names no visitor
    page_text = client.get(page(slug, "notice/")).content.decode()
    assert "受影响的类别中没有可对应到个人的类别" in page_text
    unknown = client.post(page(slug, "notice/"), {"action": "send", "addresses": f"{PEOPLE[0]}\nnobody@example.com"})
    assert unknown.status_code == HTTPStatus.BAD_REQUEST
    assert "第 2 行的地址不属于我们保存其信息的任何个人" in unknown.content.decode()
    assert not Notice.objects.exists()
    assert Incident.objects.get(slug=slug).notified_at is None
    chosen = client.post(page(slug, "notice/"), {"action": "send", "addresses": f"{PEOPLE[0]}\n{PEOPLE[2]}"})
    assert chosen.status_code == HTTPStatus.FOUND
    deliver()
    assert received(smtp) == sorted([PEOPLE[0], PEOPLE[2]])


@pytest.mark.duty("SEC-05")
def test_an_erased_person_is_not_written_to(carol, smtp):
    consulted(*PEOPLE[:2])
    erased = Person.objects.get(email_index=blind.email_index(PEOPLE[1]))
    erase_person(erased, reason="The person asked us to delete everything about them.")
    client = console(carol)
    slug = ready(client)
    client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"})
    deliver()
    assert received(smtp) == [PEOPLE[0]]
    assert not Notice.objects.filter(person=erased).exists()


def child_signs_up(smtp, email: str, guardian: str, *, consents: bool) -> Person | None:
    """A child opens an account through the pages (date of birth under 14, the guardian's address);
    the guardian consents through their e-mailed link and the child confirms the account by theirs,
    or the guardian never answers (nothing of the child is then held: CHD-01)."""
    data = sign_up_data(email=email, date_of_birth="2016-03-01", guardian_email=guardian)
    assert Client().post("/account/sign-up/", data).status_code == HTTPStatus.FOUND
    deliver("piwarden.children.")
    [link] = re.findall(r"https?://[^/\s]+(/\S*guardian/\S+)", smtp.collector.to(guardian)[-1].body)
    if not consents:
        return None
    response = Client().post(link, {"decision": "consent", "separate_consent": "on"})
    assert response.status_code == HTTPStatus.OK
    deliver("piwarden.accounts.")  # the child's confirmation, sent only once the guardian consented
    [token] = re.findall(r"/account/verify/\?token=(\S+)", smtp.collector.to(email)[-1].body)
    assert Client().post("/account/verify/", {"token": token}).status_code == HTTPStatus.OK
    return Person.objects.get(email_index=blind.email_index(email))


@pytest.mark.duty("CHD-06")
def test_the_guardians_of_an_affected_minor_are_told_too_once_in_both_languages(carol, smtp):
    consulted(PEOPLE[0])
    minor = child_signs_up(smtp, "xiao.ming@example.com", "parent.of.ming@example.com", consents=True)
    assert minor is not None
    # A sign-up whose guardian has not answered holds nothing of the child: nobody to tell.
    assert child_signs_up(smtp, "xiao.hong@example.com", "parent.of.hong@example.com", consents=False) is None
    smtp.collector.received.clear()
    client = console(carol)
    slug = ready(client, categories=["consultation", "visitor_accounts"], affected_persons="2", minors_affected="1")
    assert "将同时告知其监护人" in client.get(page(slug, "notice/")).content.decode()
    client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"})
    assert deliver() == ["sent: 3"]
    # The adult, the child (their confirmed account address) and the guardian who consented.
    assert received(smtp) == sorted([PEOPLE[0], "parent.of.ming@example.com", "xiao.ming@example.com"])
    [letter] = smtp.collector.to("parent.of.ming@example.com")
    assert "监护人" in letter.body
    assert "guardian of a minor" in letter.body
    assert "涉及您孩子" in letter.subject
    assert "concerning your child" in letter.subject
    guardian_notices = Notice.objects.filter(recipient=Recipient.GUARDIAN)
    assert dict(guardian_notices.values_list("person_id", "outcome")) == {minor.pk: "sent"}
    # Pressing send again, and the worker running again, tells no guardian twice.
    client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"})
    assert deliver() == ["nothing to send"]
    assert len(smtp.collector.to("parent.of.ming@example.com")) == 1
    [queued, again] = AuditEvent.objects.filter(event_type=EventType.INCIDENT_NOTICES_QUEUED).order_by("id")
    assert (queued.extra["guardians"], again.extra["guardians"]) == (1, 0)


@pytest.fixture
def no_guardian_source() -> Iterator[None]:
    """A deployment whose children's app registers no source of guardians' addresses."""
    installed = guardians.source()
    guardians.unregister_guardian_source()
    yield
    if installed is not None:
        guardians.register_guardian_source(installed)


@pytest.mark.duty("CHD-06")
@pytest.mark.usefixtures("no_guardian_source")
def test_without_a_source_of_guardians_the_officer_is_told_and_the_record_says_so(carol, smtp):
    consulted(PEOPLE[0])
    client = console(carol)
    slug = ready(client, affected_persons="1", minors_affected="1")
    warning = client.get(page(slug, "notice/")).content.decode()
    assert "尚未接入监护人地址来源" in warning
    client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"})
    [queued] = AuditEvent.objects.filter(event_type=EventType.INCIDENT_NOTICES_QUEUED)
    assert (queued.extra["guardians"], queued.extra["guardians_unreachable"]) == (0, True)
    assert step(client, slug, "publish").status_code == HTTPStatus.FOUND  # the public warning instead
