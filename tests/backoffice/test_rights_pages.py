"""The rights queue's pages in the staff console (issue 7 §3): ordered by due date with working
days left, filtered by plain columns, masked, the reveal audited; zh-hans and English; no script."""

from __future__ import annotations

import datetime
from http import HTTPStatus

import pytest
from django.utils import timezone

from piwarden.audit.models import AuditEvent
from piwarden.rights import clock
from piwarden.rights.models import RequestKind, RightsRequest
from tests.rights.staffing import act, console, verified_request

pytestmark = pytest.mark.django_db


def queue(client, query: str = "") -> str:
    response = client.get(f"/backoffice/rights/{query}")
    assert response.status_code == HTTPStatus.OK
    return response.content.decode()


def test_the_queue_orders_by_due_date_with_working_days_left_and_shows_no_personal_value(carol):
    later = verified_request("later.person@example.com", details="请更正我的公司名称为示例有限公司")
    sooner = verified_request("sooner.person@example.com", kind=RequestKind.DELETION)
    today = clock.day_of_receipt(timezone.now())
    soon_due = today + datetime.timedelta(days=3)
    RightsRequest.objects.filter(pk=sooner.pk).update(due_on=soon_due)
    page = queue(console(carol))
    assert page.index(sooner.reference) < page.index(later.reference)
    left = clock.working_days_left(soon_due, today)
    row = page.split(f'data-reference="{sooner.reference}"')[1].split("</tr>")[0]
    assert f">{left}<" in row
    for value in ("later.person", "sooner.person", "示例有限公司"):
        assert value not in page
    assert "<script" not in page


def test_filters_by_status_kind_and_assigned_to_me(carol, tmp_path):
    from tests.conftest import make_staff  # noqa: PLC0415

    dave = make_staff("dave", "privacy_officer", tmp_path)
    mine = verified_request("a@example.com", kind=RequestKind.DELETION)
    other = verified_request("b@example.com", kind=RequestKind.ACCESS)
    client = console(carol)
    act(client, mine.reference, "assign", assignee=carol.pk)
    act(client, other.reference, "assign", assignee=dave.pk)
    act(client, other.reference, "start")
    page = queue(client, "?mine=on")
    assert mine.reference in page
    assert other.reference not in page
    page = queue(client, "?kind=access")
    assert (mine.reference in page, other.reference in page) == (False, True)
    page = queue(client, "?status=in_progress")
    assert (mine.reference in page, other.reference in page) == (False, True)
    assert client.get("/backoffice/rights/?status=nonsense").status_code == HTTPStatus.BAD_REQUEST


def test_the_pages_speak_chinese_first_and_english_on_request(carol, client):
    request = verified_request()
    zh = console(carol)
    assert "权利请求" in queue(zh)
    detail = zh.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert "延期" in detail
    en = console(carol)
    en.post("/backoffice/preferences/", {"language": "en"})
    assert "Rights requests" in queue(en)
    detail = en.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert "Extend" in detail
    assert "Working days left" in queue(en) or "working days left" in detail


def test_the_request_page_masks_what_the_person_wrote_until_an_audited_reveal(carol):
    request = verified_request("reveal.me@example.com", details="Please send me everything about my account.")
    client = console(carol)
    page = client.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert "reveal.me" not in page
    assert "everything about my account" not in page
    response = act(
        client, request.reference, "reveal", field_names=["email", "details"], reason="Checking what is asked"
    )
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert "reveal.me@example.com" in page
    assert "everything about my account" in page
    [event] = AuditEvent.objects.filter(event_type="pii.revealed")
    assert (event.actor, sorted(event.fields), event.reason) == (carol, ["details", "email"], "Checking what is asked")
    # Without a reason: refused, recorded, nothing shown.
    response = act(client, request.reference, "reveal", field_names=["email"], reason="")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "reveal.me" not in response.content.decode()


def test_the_timeline_shows_the_steps_the_person_sees(carol):
    request = verified_request()
    client = console(carol)
    act(client, request.reference, "start")
    act(client, request.reference, "extend", reason="我们需要更多时间来核对您的资料。")
    page = client.get(f"/backoffice/rights/{request.reference}/").content.decode()
    timeline = page.split('id="timeline"')[1].split("</ol>")[0]
    assert timeline.count("<li>") == 4  # awaiting verification, received, in progress, extended
    assert "我们需要更多时间来核对您的资料。" not in page  # our answer may quote the person: revealed on demand
    response = act(client, request.reference, "reveal", field_names=["extension_reason"], reason="Checking our answer")
    assert "我们需要更多时间来核对您的资料。" in response.content.decode()


def test_the_queue_reads_in_a_constant_number_of_statements(carol):
    """No statement per row (the assignee, the calendar): 3 requests or 12, the same count."""
    from django.db import connection  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    client = console(carol)
    for n in range(3):
        act(client, verified_request(f"q{n}@example.com").reference, "assign", assignee=carol.pk)
    with CaptureQueriesContext(connection) as few:
        queue(client)
    for n in range(3, 12):
        act(client, verified_request(f"q{n}@example.com").reference, "assign", assignee=carol.pk)
    with CaptureQueriesContext(connection) as many:
        page = queue(client)
    assert page.count('data-reference="') == 12
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
