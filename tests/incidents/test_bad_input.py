"""Bad input on every form of the register, in Chinese and in English: a 400 that says what is
wrong in the staff member's language, and nothing changed (no incident, no step, no audit event
but the refusals)."""

from __future__ import annotations

import datetime
from http import HTTPStatus

import pytest
from django.utils import timezone

from piwarden.audit.models import AuditEvent
from piwarden.incidents.models import Incident, Notice
from tests.incidents.console import REGISTER, consulted, incident_form, notice_form, page, record, report_form, step
from tests.rights.staffing import console

pytestmark = pytest.mark.django_db

FUTURE = (timezone.localtime() + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")

# (form, data, the message in Chinese, the message in English)
RECORD_CASES = [
    ("empty", {}, "此项为必填项。", "This field is required."),
    ("future", incident_form(detected_at=FUTURE), "发现时间晚于当前时间", "The detection time is in the future"),
    (
        "minors",
        incident_form(affected_persons="1", minors_affected="2"),
        "未成年人人数不能多于受影响的总人数。",
        "There cannot be more minors than persons affected.",
    ),
    ("grade", incident_form(grade="huge"), "请从列表中选择", "Select a valid choice"),
    ("category", incident_form(categories=["health"]), "请从列表中选择", "Select a valid choice"),
    ("negative", incident_form(affected_persons="-1"), "0", "0"),
    ("long title", incident_form(title="x" * 201), "200", "200"),
]


def in_language(client, language: str):
    if language == "en":
        assert client.post("/backoffice/preferences/", {"language": "en"}).status_code == HTTPStatus.FOUND
    return client


def snapshot() -> tuple[object, ...]:
    return (
        list(Incident.objects.values_list("slug", "state", "report", "notice", "notified_at", "no_notice_reason")),
        Notice.objects.count(),
        AuditEvent.objects.exclude(event_type__in=("incident.action_refused", "staff.language_set")).count(),
    )


@pytest.mark.duty("SEC-04")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_record_form_refuses_bad_input(carol, language):
    client = in_language(console(carol), language)
    for name, data, zh, en in RECORD_CASES:
        before = snapshot()
        answer = client.post(REGISTER, data)
        assert answer.status_code == HTTPStatus.BAD_REQUEST, name
        assert (zh if language == "zh-hans" else en) in answer.content.decode(), name
        assert snapshot() == before, name
    assert not Incident.objects.exists()


@pytest.mark.duty("SEC-05")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_incident_report_and_notice_forms_refuse_bad_input(carol, language):
    consulted("e.five@example.com")
    client = in_language(console(carol), language)
    slug = record(client)
    step(client, slug, "activate_plan")
    step(client, slug, "contain")
    zh = language == "zh-hans"
    cases = [
        (
            page(slug),
            {"action": "explode"},
            "请选择本页上的一个步骤。" if zh else "Choose one of the steps on this page.",
        ),
        (page(slug), {"action": "update", **incident_form(minors_affected="9")}, "未成年人" if zh else "more minors"),
        (page(slug, "report/"), {}, "此项为必填项。" if zh else "This field is required."),
        (page(slug, "report/"), report_form(impact=" "), "此项为必填项。" if zh else "This field is required."),
        (page(slug, "notice/"), {"action": "save"}, "此项为必填项。" if zh else "This field is required."),
        (page(slug, "notice/"), {}, "请选择本页上的一个步骤。" if zh else "Choose one of the steps on this page."),
        (page(slug, "notice/"), {"action": "send"}, "请选择告知对象" if zh else "Choose whom to notify"),
        (
            page(slug, "notice/"),
            {"action": "send", "addresses": "e.five@example.com\nnot-an-address"},
            "以下行不是有效的电子邮箱地址：2" if zh else "Not an e-mail address, on line(s): 2.",
        ),
        (
            page(slug, "notice/"),
            {"action": "decline", "justification": "too short"},
            "至少" if zh else "at least 20 characters",
        ),
    ]
    cases.append(
        (
            page(slug, "notice/"),
            {"action": "send", "by_categories": "on"},
            "请先填写告知的文本。" if zh else "texts first.",
        )
    )
    for url, data, message in cases:
        if url.endswith("/notice/") and data.get("by_categories"):
            assert client.post(page(slug, "report/"), report_form()).status_code == HTTPStatus.FOUND
        before = snapshot()
        answer = client.post(url, data)
        assert answer.status_code == HTTPStatus.BAD_REQUEST, (url, data)
        assert message in answer.content.decode(), (url, data, message)
        assert snapshot() == before, (url, data)
    assert client.post(page(slug, "notice/"), notice_form()).status_code == HTTPStatus.FOUND


@pytest.mark.duty("SEC-05")
def test_the_public_page_shows_only_a_published_notice(carol):
    client = console(carol)
    slug = record(client)
    assert client.get(f"/incidents/{slug}/").status_code == HTTPStatus.NOT_FOUND
    assert client.get("/en/incidents/nosuch/").status_code == HTTPStatus.NOT_FOUND
