"""Training attestations (issue 8 §4, policy §五.5): a role that reveals personal data needs a
current one; its expiry suspends reveals (with a message saying why and what to do) and a
renewal restores them; notices go out by e-mail before expiry and at expiry, once each.

Real HTTP, the real SMTP server (the ``smtp`` fixture), the clock moved by time-machine.
"""

from __future__ import annotations

import datetime
import io
from http import HTTPStatus

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.tasks import TaskResultStatus
from django.test import Client
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import AuditEvent, EventType
from piwarden.inquiries.models import Inquiry
from piwarden.staff.models import TrainingNotice, TrainingRecord
from piwarden.staff.training import add_months, expires_on, today, training_lapse
from tests.conftest import make_staff, sign_in
from tests.rights.staffing import act, verified_request

pytestmark = pytest.mark.django_db

REASON = "Calling back about the quote"


def console(user: User) -> Client:
    client = Client()
    response = sign_in(client, user)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    return client


def reveal(client: Client, reference: str) -> object:
    data = {"purpose": "respond_inquiry", "field_names": ["name"], "reason": REASON}
    return client.post(f"/backoffice/inquiries/{reference}/", data)


def at_noon(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(12), tzinfo=datetime.UTC)


def run_staff_tasks() -> list[str]:
    """Run the queued staff e-mails as the worker would, oldest first."""
    outcomes = []
    jobs = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path__startswith="piwarden.staff.")
    for job in jobs.order_by("enqueued_at", "id"):
        task = import_string(job.task_path)
        outcomes.append(task.call(*job.args_kwargs["args"], **job.args_kwargs["kwargs"]))
        job.delete()
    return outcomes


def test_months_are_added_to_the_calendar_day():
    assert add_months(datetime.date(2027, 1, 31), 1) == datetime.date(2027, 2, 28)
    assert add_months(datetime.date(2028, 2, 29), 12) == datetime.date(2029, 2, 28)
    assert add_months(datetime.date(2027, 3, 15), -3) == datetime.date(2026, 12, 15)
    assert add_months(datetime.date(2027, 11, 5), 2) == datetime.date(2028, 1, 5)


@pytest.mark.duty("SEC-01")
def test_expiry_suspends_reveals_with_the_reason_and_a_renewal_restores_them(carol, alice, submit, tmp_path):
    assert submit(name="Wang Canary").status_code == HTTPStatus.FOUND
    inquiry = Inquiry.objects.get()
    Inquiry.objects.filter(pk=inquiry.pk).update(assigned_to=alice)  # sales reveal what is theirs
    assert reveal(console(alice), inquiry.reference).status_code == HTTPStatus.OK
    ends = expires_on(TrainingRecord.objects.get(staff=alice).completed_on)
    with time_machine.travel(at_noon(ends - datetime.timedelta(days=1)), tick=True):
        assert reveal(console(alice), inquiry.reference).status_code == HTTPStatus.OK  # the last day it counts
    with time_machine.travel(at_noon(ends), tick=True):
        sales = console(alice)  # she still signs in, and sees the inbox
        assert sales.get("/backoffice/").status_code == HTTPStatus.OK
        refused = reveal(sales, inquiry.reference)
        assert refused.status_code == HTTPStatus.FORBIDDEN
        page = refused.content.decode()
        assert "Wang Canary" not in page
        assert ends.isoformat() in page
        assert "请个人信息保护负责人予以记录" in page  # what to do: ask the privacy officer to record it
        [event] = AuditEvent.objects.filter(event_type=EventType.PII_REVEAL_REFUSED)
        assert (event.actor, event.extra["refusal"]) == (alice, "training attestation expired")
        # The privacy officer records the renewal in the back office: reveals work again at once.
        officer = console(carol)
        recorded = officer.post(
            "/backoffice/training/", {"staff": alice.pk, "course": "数据保护年度培训", "completed_on": ends.isoformat()}
        )
        assert recorded.status_code == HTTPStatus.FOUND
        restored = reveal(sales, inquiry.reference)
        assert restored.status_code == HTTPStatus.OK
        assert "Wang Canary" in restored.content.decode()
    [renewal] = AuditEvent.objects.filter(event_type=EventType.TRAINING_RECORDED, actor=carol)
    assert renewal.extra["staff"] == alice.pk
    assert renewal.extra["expires_on"] == add_months(ends, 12).isoformat()
    assert "数据保护年度培训" not in str(renewal.extra)  # the course stays on its row


@pytest.mark.duty("SEC-01")
def test_no_training_recorded_refuses_reveals_of_rights_requests_too(tmp_path):
    frank = make_staff("frank", "privacy_officer", tmp_path, trained=False)
    request = verified_request("someone@example.com", details="Please send me my data.")
    response = act(console(frank), request.reference, "reveal", field_names=["email"], reason="Checking what is asked")
    assert response.status_code == HTTPStatus.FORBIDDEN
    page = response.content.decode()
    assert "someone@example.com" not in page
    [event] = AuditEvent.objects.filter(event_type=EventType.PII_REVEAL_REFUSED)
    assert event.extra["refusal"] == "no training recorded"


def test_a_role_that_reveals_nothing_needs_no_training(bob):
    from piwarden.staff.permissions import declared_role  # noqa: PLC0415

    TrainingRecord.objects.filter(staff=bob).delete()
    assert training_lapse(bob, declared_role(bob)) is None


def test_the_training_page_lists_who_is_due_and_nobody_records_their_own(carol, alice, bob, tmp_path):
    frank = make_staff("frank", "sales", tmp_path, trained=False)
    officer = console(carol)
    page = officer.get("/backoffice/training/").content.decode()
    states = {u: page.split(f'data-staff="{u}" data-state="')[1].split('"')[0] for u in ("alice", "bob", "frank")}
    assert states == {"alice": "current", "bob": "not_needed", "frank": "missing"}
    own = officer.post("/backoffice/training/", {"staff": carol.pk, "course": "x", "completed_on": today().isoformat()})
    assert own.status_code == HTTPStatus.BAD_REQUEST
    future = today() + datetime.timedelta(days=2)
    ahead = officer.post(
        "/backoffice/training/", {"staff": frank.pk, "course": "x", "completed_on": future.isoformat()}
    )
    assert ahead.status_code == HTTPStatus.BAD_REQUEST
    assert not TrainingRecord.objects.filter(staff__in=[carol, frank]).exclude(recorded_by=None).exists()
    assert (
        officer.post(
            "/backoffice/training/", {"staff": frank.pk, "course": "Basics", "completed_on": today().isoformat()}
        ).status_code
        == HTTPStatus.FOUND
    )
    assert TrainingRecord.objects.get(staff=frank).recorded_by == carol


@pytest.mark.duty("SEC-01")
def test_notices_are_mailed_before_expiry_and_at_expiry_once_each(smtp, alice, carol, settings):
    settings.PIWARDEN_TRAINING_NOTICE_DAYS = 30
    User.objects.filter(pk=alice.pk).update(email="alice.staff@example.com")
    ends = expires_on(TrainingRecord.objects.get(staff=alice).completed_on)
    with time_machine.travel(at_noon(ends - datetime.timedelta(days=31)), tick=False):
        call_command("staff", "periodic", stdout=io.StringIO())
    assert run_staff_tasks() == ["sent"]  # no training notice yet; the periodic job's first access review
    with time_machine.travel(at_noon(ends - datetime.timedelta(days=30)), tick=False):
        call_command("staff", "periodic", stdout=io.StringIO())
        assert run_staff_tasks() == ["sent", "sent"]  # alice and carol, trained the same day
        call_command("staff", "periodic", stdout=io.StringIO())
        assert run_staff_tasks() == []  # once
    [soon] = smtp.collector.to("alice.staff@example.com")
    assert ends.isoformat() in soon.subject
    assert "alice" in soon.body
    with time_machine.travel(at_noon(ends), tick=False):
        out = io.StringIO()
        call_command("staff", "training", "remind", stdout=out)
        assert "Queued 2" in out.getvalue()
        run_staff_tasks()
    expired = smtp.collector.to("alice.staff@example.com")[-1]
    assert "暂停" in expired.subject or "suspended" in expired.subject
    assert ends.isoformat() in expired.body
    # Carol's account has no address: hers went to the privacy officer's, who tells her.
    to_officer = smtp.collector.to(settings.PIWARDEN_PRIVACY_OFFICER_EMAIL)
    assert sum("carol" in m.body for m in to_officer) == 2
    kinds = sorted(TrainingNotice.objects.filter(staff=alice).values_list("kind", flat=True))
    assert kinds == ["due_soon", "expired"]
    assert AuditEvent.objects.filter(event_type=EventType.TRAINING_NOTICE).count() == 4
