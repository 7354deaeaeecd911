"""Reminders at working day 10 and escalation when overdue (RGT-09), counted with the PRC clock
across National Day 2026 (1-7 October off, Saturday 10 October a make-up workday).  The job takes
``today``: the dates are fixed, nothing patches the time."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core import mail
from django.core.management import call_command

from piwarden.audit.models import AuditEvent
from piwarden.rights import clock
from piwarden.rights.actions import remind_and_escalate
from piwarden.rights.models import RightsRequest
from tests.rights.mailbox import deliver
from tests.rights.staffing import act, console, verified_request

pytestmark = pytest.mark.django_db

RECEIVED = date(2026, 9, 24)  # a Thursday, before National Day
DAY_9 = date(2026, 10, 14)
DAY_10 = date(2026, 10, 15)  # 3 working days in September, then 8 Oct ... with Saturday 10 Oct counted
DUE = date(2026, 10, 22)  # the 15th working day
DAY_16 = date(2026, 10, 23)


def received_on(day: date) -> RightsRequest:
    request = verified_request()
    due = clock.due_date(day)
    RightsRequest.objects.filter(pk=request.pk).update(received_on=day, due_on=due.date, due_provisional=False)
    request.refresh_from_db()
    return request


def test_the_fixed_dates_are_what_the_clock_says():
    calendar = clock.load_calendar()
    assert clock.due_date(RECEIVED, calendar).date == DUE
    assert clock.working_days_between(RECEIVED, DAY_10, calendar) == 10
    assert clock.working_days_between(RECEIVED, DAY_16, calendar) == 16
    assert clock.is_working_day(date(2026, 10, 10), calendar)  # the make-up Saturday
    assert not clock.is_working_day(date(2026, 10, 5), calendar)  # National Day week


@pytest.mark.duty("RGT-09")
def test_a_reminder_at_working_day_10_once_to_the_assignee(carol, settings):
    carol.email = "carol@example.com"
    carol.save(update_fields=["email"])
    request = received_on(RECEIVED)
    assert act(console(carol), request.reference, "assign", assignee=carol.pk).status_code == 302
    assert remind_and_escalate(today=DAY_9).reminded == ()
    assert remind_and_escalate(today=DAY_10).reminded == (request.reference,)
    assert remind_and_escalate(today=DAY_10).reminded == ()  # idempotent
    assert remind_and_escalate(today=DUE).reminded == ()
    deliver()
    deliver()
    reminders = [m for m in mail.outbox if request.reference in m.subject]
    assert len(reminders) == 1
    assert reminders[0].to == ["carol@example.com"]
    assert "li.na" not in reminders[0].body  # no personal value in a staff alert
    [event] = AuditEvent.objects.filter(event_type="rights.reminded")
    assert event.extra["working_day"] == 10


@pytest.mark.duty("RGT-09")
def test_an_unassigned_request_reminds_the_privacy_officer_address(settings):
    settings.PIWARDEN_PRIVACY_OFFICER_EMAIL = "dpo@example.com"
    request = received_on(RECEIVED)
    assert remind_and_escalate(today=DAY_10).reminded == (request.reference,)
    deliver()
    [reminder] = [m for m in mail.outbox if request.reference in m.subject]
    assert reminder.to == ["dpo@example.com"]


@pytest.mark.duty("RGT-09")
def test_escalation_on_working_day_16_once_with_a_flag_in_the_queue(carol, settings):
    settings.PIWARDEN_PRIVACY_OFFICER_EMAIL = "dpo@example.com"
    request = received_on(RECEIVED)
    assert remind_and_escalate(today=DUE).escalated == ()  # due today: not yet overdue
    done = remind_and_escalate(today=DAY_16)
    assert done.escalated == (request.reference,)
    assert remind_and_escalate(today=DAY_16).escalated == ()
    assert remind_and_escalate(today=date(2026, 10, 26)).escalated == ()
    deliver()
    deliver()
    escalations = [m for m in mail.outbox if "overdue" in m.subject or "逾期" in m.subject]
    assert len(escalations) == 1
    assert escalations[0].to == ["dpo@example.com"]
    assert AuditEvent.objects.filter(event_type="rights.escalated").count() == 1
    page = console(carol).get("/backoffice/rights/").content.decode()
    row = page.split(f'data-reference="{request.reference}"')[0].rsplit("<tr", 1)[1]
    assert 'class="overdue"' in row


def test_the_command_runs_the_job_by_hand():
    request = received_on(RECEIVED)
    out = io.StringIO()
    call_command("rights", "remind", "--today", DAY_10.isoformat(), stdout=out)
    assert f"Reminded 1 ({request.reference})" in out.getvalue()
    out = io.StringIO()
    call_command("rights", "remind", "--today", DAY_10.isoformat(), stdout=out)
    assert "Reminded 0 (none); escalated 0 (none)." in out.getvalue()
