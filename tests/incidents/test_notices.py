"""Notices to the persons affected (PIPL 57, SEC-05; CHD-06): exactly once per person through the
outbox, also when the worker stops in the middle and runs again; chosen by a list of addresses;
guardians of minors through the guardians' hook, and a clear warning while no source exists."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from http import HTTPStatus

import pytest
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import AuditEvent, EventType
from piwarden.incidents import guardians
from piwarden.incidents.models import Incident, Notice, Recipient
from piwarden.people.actions import erase_person
from piwarden.people.models import Person
from piwarden.processing.gate import Permit
from piwarden.vault import blind
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


class Guardians:
    """A source of guardians' addresses as the children's app will register one: here, one minor."""

    categories: Collection[str] = ("consultation",)

    def __init__(self, minor: uuid.UUID) -> None:
        self.minor = minor

    def minors(self, person_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        return {p for p in person_ids if p == self.minor}

    def addresses(self, permit: Permit) -> list[str]:
        assert permit.decision.purpose == "incident_notice"  # read inside the gate's use
        return ["guardian.of.b@example.com"] if permit.person.pk == self.minor else []


@pytest.fixture
def guardian_source() -> Iterator[type[Guardians]]:
    yield Guardians
    guardians.unregister_guardian_source()


@pytest.mark.duty("CHD-06")
def test_the_guardians_of_an_affected_minor_are_told_too(carol, smtp, guardian_source):
    consulted(*PEOPLE[:2])
    minor = Person.objects.get(email_index=blind.email_index(PEOPLE[1]))
    guardians.register_guardian_source(guardian_source(minor.pk))
    client = console(carol)
    slug = ready(client, affected_persons="2", minors_affected="1")
    assert "将同时告知其监护人" in client.get(page(slug, "notice/")).content.decode()
    client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"})
    assert deliver() == ["sent: 3"]
    assert received(smtp) == sorted([*PEOPLE[:2], "guardian.of.b@example.com"])
    [letter] = smtp.collector.to("guardian.of.b@example.com")
    assert "监护人" in letter.body
    assert "guardian of a minor" in letter.body
    assert "涉及您孩子" in letter.subject
    assert Notice.objects.filter(recipient=Recipient.GUARDIAN, person=minor, outcome="sent").count() == 1


@pytest.mark.duty("CHD-06")
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
