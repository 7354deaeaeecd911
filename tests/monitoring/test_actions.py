"""The monitoring run: each rule fires above its limit and not at it, runs are incremental and
idempotent, no event is counted into two alerts of a rule, and each alert is e-mailed once to
the security auditors through the task queue (a real SMTP server).  The acknowledgement is
tested through the back office (tests/backoffice/test_security_pages.py)."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

from piwarden.audit.chain import seal
from piwarden.audit.models import AuditEvent, EventType
from piwarden.monitoring.actions import run_monitor
from piwarden.monitoring.models import Alert, MonitorCursor, Rule
from tests.monitoring.events import at_prc, record

pytestmark = pytest.mark.django_db

WEDNESDAY = at_prc(2026, 12, 2, 10, 0)  # a working day, within working hours


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.PIWARDEN_ALERT_REVEALS = 5
    settings.PIWARDEN_ALERT_REVEALS_MINUTES = 10
    settings.PIWARDEN_ALERT_SIGN_IN_FAILURES = 3
    settings.PIWARDEN_ALERT_SIGN_IN_FAILURES_ALL = 6
    settings.PIWARDEN_ALERT_SIGN_IN_MINUTES = 15
    settings.PIWARDEN_ALERT_REFUSALS = 4
    settings.PIWARDEN_ALERT_REFUSALS_MINUTES = 10
    settings.PIWARDEN_ALERT_WORKING_HOURS = (datetime.time(9, 0), datetime.time(18, 0))


def deliver() -> list[str]:
    """Run the queued alert e-mails as the worker would."""
    outcomes = []
    jobs = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path__startswith="piwarden.monitoring.")
    for job in jobs.order_by("enqueued_at", "id"):
        outcomes.append(import_string(job.task_path).call(*job.args_kwargs["args"], **job.args_kwargs["kwargs"]))
        job.delete()
    return outcomes


def alerts(rule: Rule) -> list[Alert]:
    return list(Alert.objects.filter(rule=rule).order_by("id"))


@pytest.mark.duty("SEC-02")
def test_bulk_reveals_fire_above_the_limit_and_not_at_it(alice, carol):
    record(EventType.PII_REVEALED, WEDNESDAY, actor=alice, count=5, every=60)  # 5 in 4 minutes: at the limit
    record(EventType.PII_REVEALED, WEDNESDAY, actor=carol, count=5, every=60)
    assert run_monitor().alerts == ()
    record(EventType.PII_REVEALED, WEDNESDAY + datetime.timedelta(minutes=5), actor=alice)  # the 6th in 5 minutes
    run = run_monitor()
    [alert] = alerts(Rule.BULK_REVEALS)
    assert run.alerts == (alert.pk,)
    assert (alert.staff_id, alert.events, alert.threshold, alert.window_minutes) == (alice.pk, 6, 5, 10)
    reveals = list(AuditEvent.objects.filter(event_type="pii.revealed", actor=alice).order_by("seq"))
    assert (alert.first_seq, alert.last_seq) == (reveals[0].seq, reveals[-1].seq)
    assert (alert.first_at, alert.last_at) == (reveals[0].occurred_at, reveals[-1].occurred_at)


@pytest.mark.duty("SEC-02")
def test_reveals_spread_wider_than_the_window_raise_nothing(alice):
    record(EventType.PII_REVEALED, WEDNESDAY, actor=alice, count=12, every=150)  # 4 per 10 minutes at most
    assert run_monitor().alerts == ()


@pytest.mark.duty("SEC-02")
def test_a_burst_split_across_two_runs_is_seen_and_its_events_count_once(alice):
    record(EventType.PII_REVEALED, WEDNESDAY, actor=alice, count=4, every=30)
    assert run_monitor().alerts == ()
    record(EventType.PII_REVEALED, WEDNESDAY + datetime.timedelta(minutes=2), actor=alice, count=2, every=30)
    assert len(run_monitor().alerts) == 1  # 4 look-back + 2 new = 6
    # Six more soon after: above the limit, but within a window of the alert: no second alert yet.
    record(EventType.PII_REVEALED, WEDNESDAY + datetime.timedelta(minutes=5), actor=alice, count=6, every=10)
    assert run_monitor().alerts == ()
    # A window after the alert, one more: with the six (which no alert counted) within 10 minutes
    # of it, the limit is exceeded again.
    record(EventType.PII_REVEALED, WEDNESDAY + datetime.timedelta(minutes=14), actor=alice)
    run_monitor()
    first, second = alerts(Rule.BULK_REVEALS)
    assert second.first_seq > first.last_seq
    assert second.events == 7


@pytest.mark.duty("SEC-02")
def test_a_flood_raises_one_alert_per_window_not_one_per_few_events():
    record(EventType.PROCESSING_REFUSED, WEDNESDAY, count=200, every=6)  # 20 minutes of refusals, limit 4 in 10
    run_monitor()
    assert len(alerts(Rule.REFUSAL_BURST)) == 2
    first, second = alerts(Rule.REFUSAL_BURST)
    assert second.last_at - first.last_at >= datetime.timedelta(minutes=10)


@pytest.mark.duty("SEC-02")
def test_runs_are_idempotent_and_move_past_every_event(alice):
    record(EventType.PII_REVEALED, WEDNESDAY, actor=alice, count=6, every=10)
    record(EventType.STAFF_SIGNED_IN, WEDNESDAY, actor=alice)
    first = run_monitor()
    assert len(first.alerts) == 1
    read = AuditEvent.objects.exclude(event_type="monitoring.alert_raised")
    assert MonitorCursor.objects.get().last_seq == max(read.values_list("seq", flat=True))
    for _ in range(3):
        assert run_monitor().alerts == ()
    assert Alert.objects.count() == 1
    assert AuditEvent.objects.filter(event_type="monitoring.alert_raised").count() == 1


@pytest.mark.duty("SEC-02")
def test_out_of_hours_reveals_on_a_weekend_and_a_holiday(alice, carol):
    record(EventType.PII_REVEALED, at_prc(2026, 10, 1, 11, 0), actor=alice, count=2)  # National Day, 11:00
    record(EventType.PII_REVEALED, at_prc(2026, 10, 10, 11, 0), actor=alice)  # make-up Saturday: a working day
    record(EventType.PII_REVEALED, at_prc(2026, 12, 5, 14, 0), actor=carol)  # Saturday
    record(EventType.PII_REVEALED, at_prc(2026, 12, 2, 21, 30), actor=carol)  # Wednesday evening
    record(EventType.PII_REVEALED, WEDNESDAY, actor=carol)  # Wednesday, working hours
    run_monitor()
    found = [(a.staff_id, a.first_at, a.events) for a in alerts(Rule.OFF_HOURS_REVEALS)]
    assert sorted(found) == sorted(
        [
            (alice.pk, at_prc(2026, 10, 1, 11, 0), 2),
            (carol.pk, at_prc(2026, 12, 5, 14, 0), 1),
            (carol.pk, at_prc(2026, 12, 2, 21, 30), 1),
        ]
    )
    # A later reveal the same Saturday raises no second alert for that day; the next day does.
    record(EventType.PII_REVEALED, at_prc(2026, 12, 5, 16, 0), actor=carol)
    assert run_monitor().alerts == ()
    record(EventType.PII_REVEALED, at_prc(2026, 12, 6, 10, 0), actor=carol)
    assert len(run_monitor().alerts) == 1


@pytest.mark.duty("SEC-02")
def test_failed_sign_ins_per_account_and_overall(alice, carol):
    record(EventType.STAFF_SIGN_IN_FAILED, WEDNESDAY, actor=alice, count=3)  # at the per-account limit
    record(EventType.STAFF_SIGN_IN_FAILED, WEDNESDAY, actor=None, count=3)  # names that are no account's
    assert run_monitor().alerts == ()  # 6 overall: at that limit too
    record(EventType.STAFF_SIGN_IN_FAILED, WEDNESDAY + datetime.timedelta(minutes=1), actor=alice)
    run_monitor()
    [mine] = alerts(Rule.SIGN_IN_FAILURES)
    [overall] = alerts(Rule.SIGN_IN_FAILURES_ALL)
    assert (mine.staff_id, mine.events, mine.threshold) == (alice.pk, 4, 3)
    assert (overall.staff_id, overall.events, overall.threshold) == (None, 7, 6)


@pytest.mark.duty("SEC-02")
def test_a_burst_of_gate_refusals(alice):
    record(EventType.PROCESSING_REFUSED, WEDNESDAY, count=2)
    record(EventType.PII_REVEAL_REFUSED, WEDNESDAY, actor=alice, count=2)
    assert run_monitor().alerts == ()
    record(EventType.PROCESSING_REFUSED, WEDNESDAY + datetime.timedelta(minutes=9))
    [alert] = [Alert.objects.get(pk=pk) for pk in run_monitor().alerts]
    assert (alert.rule, alert.events, alert.staff_id) == (Rule.REFUSAL_BURST, 5, None)


@pytest.mark.duty("SEC-02")
def test_the_alert_is_mailed_once_to_the_security_auditors_without_personal_data(alice, bob, carol, smtp):
    bob.email = "bob@example.com"
    bob.save(update_fields=["email"])
    carol.email = "carol@example.com"  # a privacy officer: reads the audit log, is not the security role
    carol.save(update_fields=["email"])
    record(EventType.PII_REVEALED, WEDNESDAY, actor=alice, count=6)
    [alert_id] = run_monitor().alerts
    assert deliver() == ["sent"]
    assert deliver() == []  # one task per alert
    [received] = smtp.collector.received
    assert received.rcpt_tos == ["bob@example.com"]
    assert f"#{alice.pk}" in received.body
    assert f"/backoffice/alerts/{alert_id}/" in received.body
    assert "alice" not in received.body  # the account by id only
    assert Alert.objects.get(pk=alert_id).mailed_at is not None
    # The task run again (a worker that crashed after sending, say) sends nothing more.
    assert import_string("piwarden.monitoring.tasks.send_alert_mail").call(str(alert_id)) == "already sent"
    assert len(smtp.collector.received) == 1


def test_the_command_runs_once_and_reports():
    record(EventType.PROCESSING_REFUSED, WEDNESDAY, count=5)
    out = io.StringIO()
    call_command("audit", "monitor", stdout=out)
    assert "alerts raised: " in out.getvalue()
    assert "none" not in out.getvalue()
    out = io.StringIO()
    call_command("audit", "monitor", stdout=out)  # reads the first run's own alert.raised event
    assert "1 event(s) examined; alerts raised: none" in out.getvalue()
    out = io.StringIO()
    call_command("audit", "monitor", stdout=out)
    assert "0 event(s) examined; alerts raised: none" in out.getvalue()


def test_only_sealed_events_are_read_and_the_run_seals_first(alice):
    record(EventType.PII_REVEALED, WEDNESDAY, actor=alice, count=6)
    assert AuditEvent.objects.filter(seq__isnull=True).exists()
    assert len(run_monitor().alerts) == 1
    seal()
    assert not AuditEvent.objects.filter(seq__isnull=True).exists()
