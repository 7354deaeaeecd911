"""The incident register end to end through the staff console (policy §五.6; SEC-04, SEC-05, SEC-06):
record, activate the plan, contain, report, write and send the notices (read back from a real SMTP
server), publish, close; each step in the audit log; a step out of order refused, in Chinese and
in English, changing nothing."""

from __future__ import annotations

import datetime
from http import HTTPStatus

import pytest
from django.test import Client

from piwarden.audit.models import AuditEvent, EventType
from piwarden.incidents.models import Incident, Notice, State
from tests.incidents.console import (
    consulted,
    deliver,
    notice_form,
    page,
    record,
    report_form,
    step,
)
from tests.rights.staffing import console

pytestmark = pytest.mark.django_db

ADDRESSES = ("zhao.lei@example.com", "qian.yu@example.com")


def english(client: Client) -> Client:
    assert client.post("/backoffice/preferences/", {"language": "en"}).status_code == HTTPStatus.FOUND
    return client


def events(slug: str) -> list[str]:
    return [
        e.event_type
        for e in AuditEvent.objects.filter(event_type__startswith="incident.").order_by("id")
        if e.extra.get("incident") == slug
    ]


@pytest.mark.duty("SEC-04")
@pytest.mark.duty("SEC-05")
@pytest.mark.duty("SEC-06")
def test_an_incident_runs_from_detection_to_closing_and_each_person_is_told_once(carol, smtp):
    consulted(*ADDRESSES)
    client = console(carol)
    slug = record(client)
    incident = Incident.objects.get(slug=slug)
    assert incident.state == State.DETECTED
    assert incident.report_due_at == incident.detected_at + datetime.timedelta(hours=4)
    register = client.get("/backoffice/incidents/").content.decode()
    assert f'href="/backoffice/incidents/{slug}/"' in register
    assert "较大" in register

    assert step(client, slug, "activate_plan").status_code == HTTPStatus.FOUND
    assert step(client, slug, "contain").status_code == HTTPStatus.FOUND
    assert client.post(page(slug, "report/"), report_form()).status_code == HTTPStatus.FOUND
    printed = client.get(page(slug, "report/print/")).content.decode()
    assert "北京市互联网信息办公室" in printed
    assert "奇安信科技集团股份有限公司" in printed  # the reporting unit, from the declaration
    exported = client.get(page(slug, "report.json"))
    assert exported["Content-Disposition"] == f'attachment; filename="incident-{slug}-report.json"'
    assert exported.json()["preservation"] == "Disk images taken"
    assert Incident.objects.get(slug=slug).state == State.REPORTED

    assert client.post(page(slug, "notice/"), notice_form()).status_code == HTTPStatus.FOUND
    sent = client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"})
    assert sent.status_code == HTTPStatus.FOUND
    assert deliver() == ["sent: 2"]
    for address in ADDRESSES:
        [message] = smtp.collector.to(address)
        body = message.body
        # PIPL 57: categories, cause, harm; measures and what the person can do; the contact; both languages.
        for text in (
            "咨询请求信息",
            "服务器组件存在未修复的漏洞",
            "您的联系方式可能被他人获取",
            "我们已隔离服务器",
            "请警惕冒充",
            "95015",
            "kefu@qianxin.com",
            "Consultation request details",
            "An unpatched component",
            "may have been read by others",
            "We isolated the server",
            "Beware of calls",
        ):
            assert text in body, text
        assert body.index("原因") < body.index("Cause:")  # Chinese first
        assert "个人信息安全事件告知" in message.subject
    # Pressing send again queues nobody twice; the worker sends nothing more.
    again = client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"})
    assert again.status_code == HTTPStatus.FOUND
    assert deliver() == ["nothing to send"]
    assert sorted(r for m in smtp.collector.received for r in m.rcpt_tos) == sorted(ADDRESSES)
    assert Notice.objects.filter(incident__slug=slug, outcome="sent").count() == 2

    assert step(client, slug, "publish").status_code == HTTPStatus.FOUND
    public = Client().get(f"/incidents/{slug}/").content.decode()
    assert "服务器组件存在未修复的漏洞" in public
    assert "95015" in public
    assert "An unpatched component" in Client().get(f"/en/incidents/{slug}/").content.decode()

    assert step(client, slug, "close").status_code == HTTPStatus.FOUND
    assert Incident.objects.get(slug=slug).state == State.CLOSED
    assert events(slug) == [
        EventType.INCIDENT_RECORDED,
        EventType.INCIDENT_PLAN_ACTIVATED,
        EventType.INCIDENT_CONTAINED,
        EventType.INCIDENT_REPORTED,
        EventType.INCIDENT_NOTICE_SAVED,
        EventType.INCIDENT_NOTICES_QUEUED,
        EventType.INCIDENT_NOTICE_SENT,
        EventType.INCIDENT_NOTICE_SENT,
        EventType.INCIDENT_NOTICES_QUEUED,
        EventType.INCIDENT_PUBLISHED,
        EventType.INCIDENT_CLOSED,
    ]
    sent_events = AuditEvent.objects.filter(event_type=EventType.INCIDENT_NOTICE_SENT)
    assert {str(e.person_id) for e in sent_events} == {str(n.person_id) for n in Notice.objects.all()}
    # The gate recorded each use of an address under the statutory basis.
    assert (
        AuditEvent.objects.filter(event_type=EventType.PROCESSING_UNDER_BASIS, purpose="incident_notice").count() == 2
    )
    # A closed incident changes no more.
    refused = step(client, slug, "publish")
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert "该事件已结案" in refused.content.decode()


@pytest.mark.duty("SEC-04")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_no_step_comes_before_the_plan(carol, language):
    client = console(carol)
    if language == "en":
        english(client)
    slug = record(client)
    expected = {
        "zh-hans": "请先启动应急预案：任何其他步骤都不能先于此步骤。",
        "en": "Activate the emergency plan first: no other step comes before it.",
    }[language]
    answers = [
        step(client, slug, "contain"),
        step(client, slug, "publish"),
        step(client, slug, "close"),
        client.post(page(slug, "report/"), report_form()),
        client.post(page(slug, "notice/"), notice_form()),
    ]
    for answer in answers:
        assert answer.status_code == HTTPStatus.BAD_REQUEST
        assert expected in answer.content.decode()
    incident = Incident.objects.get(slug=slug)
    assert (incident.state, incident.contained_at, incident.reported_at, incident.notice) == (
        State.DETECTED,
        None,
        None,
        {},
    )
    refusals = AuditEvent.objects.filter(event_type=EventType.INCIDENT_ACTION_REFUSED, actor=carol)
    assert refusals.count() == len(answers)
    assert events(slug) == [EventType.INCIDENT_RECORDED] + [EventType.INCIDENT_ACTION_REFUSED] * len(answers)


@pytest.mark.duty("SEC-04")
@pytest.mark.duty("SEC-06")
def test_the_order_of_the_later_steps_is_kept(carol):
    client = console(carol)
    slug = record(client)
    step(client, slug, "activate_plan")
    # The report may be filed before containment: the regulator's clock does not wait.
    assert client.post(page(slug, "report/"), report_form()).status_code == HTTPStatus.FOUND
    assert Incident.objects.get(slug=slug).state == State.PLAN_ACTIVATED
    client.post(page(slug, "notice/"), notice_form())
    early = client.post(page(slug, "notice/"), {"action": "send", "by_categories": "on"})
    assert early.status_code == HTTPStatus.BAD_REQUEST
    assert "请先控制事态" in early.content.decode()
    closing = step(client, slug, "close")
    assert "结案前请先控制事态" in closing.content.decode()
    step(client, slug, "contain")
    assert Incident.objects.get(slug=slug).state == State.REPORTED
    assert "结案前请告知受影响的个人" in step(client, slug, "close").content.decode()
    twice = step(client, slug, "activate_plan")
    assert twice.status_code == HTTPStatus.BAD_REQUEST
    assert "应急预案已经启动" in twice.content.decode()


@pytest.mark.duty("SEC-05")
def test_not_notifying_needs_a_justification_and_is_refused_when_the_authority_requires_notice(carol):
    client = console(carol)
    slug = record(client, grade="general")
    assert Incident.objects.get(slug=slug).report_due_at is None  # no report due for a general incident
    step(client, slug, "activate_plan")
    step(client, slug, "contain")
    short = client.post(page(slug, "notice/"), {"action": "decline", "justification": "harmless"})
    assert short.status_code == HTTPStatus.BAD_REQUEST
    assert Incident.objects.get(slug=slug).notified_at is None
    reason = "The leaked file was encrypted with a key that stayed on our servers; nobody can read it."
    done = client.post(page(slug, "notice/"), {"action": "decline", "justification": reason})
    assert done.status_code == HTTPStatus.FOUND
    incident = Incident.objects.get(slug=slug)
    assert (incident.state, incident.no_notice_reason) == (State.NOTIFIED, reason)
    [event] = AuditEvent.objects.filter(event_type=EventType.INCIDENT_NOT_NOTIFYING)
    assert (event.actor_id, event.reason) == (carol.pk, reason)
    assert step(client, slug, "close").status_code == HTTPStatus.FOUND

    required = record(client)
    step(client, required, "activate_plan")
    step(client, required, "contain")
    client.post(page(required, "report/"), report_form(authority_requires_notice="on"))
    refused = client.post(page(required, "notice/"), {"action": "decline", "justification": reason})
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert "主管部门要求告知个人" in refused.content.decode()
    assert Incident.objects.get(slug=required).notified_at is None
