"""The regulator's clock (SEC-06, IRM2025 Art 4): a grade of 较大 or above is due 4 hours after
detection, 1 hour where critical information infrastructure is involved; `piwarden incidents
remind` alerts the security role (the monitoring's alerts, e-mailed once) when the last quarter of
the window starts and when it is overdue, each once; filing the report stops it."""

from __future__ import annotations

import datetime
import io

import pytest
import time_machine
from django.core.management import call_command

from piwarden.audit.models import AuditEvent, EventType
from piwarden.incidents.models import Grade, Incident, report_deadline
from piwarden.monitoring.models import Alert, Rule
from tests.conftest import make_staff
from tests.incidents.console import deliver_alerts, incident_form, page, record, report_form, step
from tests.rights.staffing import console

pytestmark = pytest.mark.django_db

DETECTED = datetime.datetime(2026, 12, 2, 1, 0, tzinfo=datetime.UTC)  # 09:00 in Beijing


def remind() -> str:
    out = io.StringIO()
    call_command("incidents", "remind", stdout=out)
    return out.getvalue()


@pytest.mark.duty("SEC-06")
@pytest.mark.parametrize(
    ("grade", "cii", "due"),
    [
        (Grade.GENERAL, False, None),
        (Grade.RELATIVELY_MAJOR, False, datetime.timedelta(hours=4)),
        (Grade.MAJOR, False, datetime.timedelta(hours=4)),
        (Grade.PARTICULARLY_MAJOR, False, datetime.timedelta(hours=4)),
        (Grade.RELATIVELY_MAJOR, True, datetime.timedelta(hours=1)),
        (Grade.GENERAL, True, None),
    ],
)
def test_the_deadline_follows_the_grade_and_cii(grade, cii, due):
    expected = None if due is None else DETECTED + due
    assert report_deadline(grade, DETECTED, cii=cii) == expected


@pytest.fixture
def auditor(tmp_path):
    return make_staff("dora", "auditor", tmp_path, email="dora@example.com")


def alerts() -> list[tuple[str, int]]:
    return list(Alert.objects.order_by("id").values_list("rule", "last_seq"))


@pytest.mark.duty("SEC-06")
def test_the_security_role_is_alerted_before_the_deadline_and_when_it_passes(carol, auditor, smtp):
    with time_machine.travel(DETECTED + datetime.timedelta(minutes=5), tick=False):
        client = console(carol)
        slug = record(client, detected_at="2026-12-02T09:00")
    incident = Incident.objects.get(slug=slug)
    assert incident.report_due_at == DETECTED + datetime.timedelta(hours=4)
    with time_machine.travel(DETECTED + datetime.timedelta(hours=2, minutes=59), tick=False):
        assert "alerts raised: none" in remind()
    with time_machine.travel(DETECTED + datetime.timedelta(hours=3, minutes=1), tick=False):
        assert "alerts raised: none" not in remind()
        assert "alerts raised: none" in remind()  # once
    [(rule, seq)] = alerts()
    recorded = AuditEvent.objects.get(event_type=EventType.INCIDENT_RECORDED)
    assert (rule, seq) == (Rule.INCIDENT_REPORT_DUE, recorded.seq)
    assert deliver_alerts() == ["sent"]
    [mail] = smtp.collector.to("dora@example.com")
    assert "向主管部门报告事件的期限将至" in mail.subject
    with time_machine.travel(DETECTED + datetime.timedelta(hours=3, minutes=59), tick=False):
        assert "alerts raised: none" in remind()
        assert 'class="overdue"' not in console(carol).get("/backoffice/incidents/").content.decode()
    with time_machine.travel(DETECTED + datetime.timedelta(hours=4, minutes=1), tick=False):
        remind()
        assert [r for r, _ in alerts()] == [Rule.INCIDENT_REPORT_DUE, Rule.INCIDENT_REPORT_OVERDUE]
        client = console(carol)
        overdue = client.get(page(slug)).content.decode()
        assert "现已逾期" in overdue
        assert 'class="overdue"' in client.get("/backoffice/incidents/").content.decode()
        # The security auditor sees the alert in the monitoring's list.
        assert "向主管部门报告事件已逾期" in console(auditor).get("/backoffice/alerts/").content.decode()
        step(client, slug, "activate_plan")
        client.post(page(slug, "report/"), report_form())
    [reported] = AuditEvent.objects.filter(event_type=EventType.INCIDENT_REPORTED)
    assert reported.extra["late"] is True
    with time_machine.travel(DETECTED + datetime.timedelta(hours=9), tick=False):
        assert "alerts raised: none" in remind()
    assert AuditEvent.objects.filter(event_type=EventType.INCIDENT_DEADLINE_ALERT).count() == 2


@pytest.mark.duty("SEC-06")
def test_with_cii_the_hour_counts_and_a_report_in_time_stops_the_clock(carol, auditor):
    with time_machine.travel(DETECTED, tick=False):
        client = console(carol)
        slug = record(client, detected_at="2026-12-02T09:00", cii="on")
    assert Incident.objects.get(slug=slug).report_due_at == DETECTED + datetime.timedelta(hours=1)
    with time_machine.travel(DETECTED + datetime.timedelta(minutes=44), tick=False):
        assert "alerts raised: none" in remind()
    with time_machine.travel(DETECTED + datetime.timedelta(minutes=46), tick=False):
        remind()
        assert [r for r, _ in alerts()] == [Rule.INCIDENT_REPORT_DUE]
        client = console(carol)
        step(client, slug, "activate_plan")
        client.post(page(slug, "report/"), report_form())
    with time_machine.travel(DETECTED + datetime.timedelta(hours=2), tick=False):
        assert "alerts raised: none" in remind()
    [reported] = AuditEvent.objects.filter(event_type=EventType.INCIDENT_REPORTED)
    assert reported.extra["late"] is False


@pytest.mark.duty("SEC-06")
def test_raising_the_grade_later_starts_the_clock_from_detection(carol):
    with time_machine.travel(DETECTED, tick=False):
        client = console(carol)
        slug = record(client, detected_at="2026-12-02T09:00", grade="general")
        assert Incident.objects.get(slug=slug).report_due_at is None
        changed = client.post(page(slug), {"action": "update", **incident_form(detected_at="2026-12-02T09:00")})
        assert changed.status_code == 302
    assert Incident.objects.get(slug=slug).report_due_at == DETECTED + datetime.timedelta(hours=4)
    assert AuditEvent.objects.filter(event_type=EventType.INCIDENT_UPDATED).count() == 1
