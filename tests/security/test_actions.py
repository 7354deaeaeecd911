"""The security events' retention (184 days, then deleted; the month's key destroyed once the month
is empty) and ``record_security_event`` as the visitor-accounts app will call it."""

from __future__ import annotations

import datetime
import io

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client, RequestFactory

from piwarden.audit.models import AuditEvent
from piwarden.security.actions import record_security_event
from piwarden.security.device import forget_period_keys
from piwarden.security.models import EventKind, Refusal, SecurityEvent, SecurityPeriod
from piwarden.vault.models import DataKey
from tests.conftest import consultation_data

pytestmark = pytest.mark.django_db

START = datetime.datetime(2026, 3, 10, 9, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def housekeeping() -> str:
    out = io.StringIO()
    call_command("housekeeping", "--once", stdout=out, stderr=out)
    return out.getvalue()


def submitted(settings, at: datetime.datetime, address: str) -> None:
    with time_machine.travel(at, tick=False):
        forget_period_keys()
        client = Client(REMOTE_ADDR=address)
        settings.PIWARDEN_CONSULTATION_RATE = "1/d"
        assert client.post("/en/consultation/", consultation_data()).status_code == 302
        # ... and a refusal of the same moment
        assert client.post("/en/consultation/", consultation_data()).status_code == 429
        settings.PIWARDEN_CONSULTATION_RATE = "10000/m"
    forget_period_keys()


@pytest.mark.duty("RET-04")
@pytest.mark.duty("RET-02")
def test_security_events_are_kept_184_days_then_deleted_and_the_months_key_destroyed(settings):
    settings.PIWARDEN_RETENTION_CLOCK_SKEW = 24 * 400  # months travelled: not a clock that jumped
    submitted(settings, START, "198.51.100.71")
    submitted(settings, START + 40 * DAY, "198.51.100.72")  # April: another month, another key
    march, april = SecurityPeriod.objects.order_by("starts_on")
    assert march.data_key_id != april.data_key_id
    assert SecurityEvent.objects.count() == 4
    assert Refusal.objects.count() == 2

    # Six months at least: on day 183 nothing of March is deleted.
    with time_machine.travel(START + 183 * DAY, tick=False):
        out = housekeeping()
    assert "security_events (security.SecurityEvent): 0 deleted" in out
    assert "security_refusals (security.Refusal): 0 deleted" in out
    assert SecurityEvent.objects.count() == 4

    # Past 184 days: March's events and refusal go; its key is destroyed only once the month has ended
    # 184 days ago and holds nothing (April's key and rows stay).
    with time_machine.travel(START + 185 * DAY, tick=False):
        out = housekeeping()
    assert "security_events (security.SecurityEvent): 2 deleted" in out
    assert "security_refusals (security.Refusal): 1 deleted" in out
    assert SecurityEvent.objects.count() == 2
    assert Refusal.objects.count() == 1
    assert not DataKey.objects.get(pk=march.data_key_id).is_destroyed  # March ended 31 Mar: not 184 days yet
    with time_machine.travel(datetime.datetime(2026, 10, 3, tzinfo=datetime.UTC), tick=False):
        housekeeping()
    assert DataKey.objects.get(pk=march.data_key_id).is_destroyed
    assert list(SecurityPeriod.objects.values_list("pk", flat=True)) == [april.pk]
    assert not DataKey.objects.get(pk=april.data_key_id).is_destroyed
    batches = AuditEvent.objects.filter(event_type="retention.batch").order_by("id")
    assert [(e.extra["model"], e.extra["rows"], e.extra["retention_days"]) for e in batches] == [
        ("security.Refusal", 1, 184),
        ("security.SecurityEvent", 2, 184),
    ]


@pytest.mark.duty("RET-04")
def test_a_refusal_under_review_is_kept_until_184_days_after_its_review(settings):
    settings.PIWARDEN_RETENTION_CLOCK_SKEW = 24 * 400  # months travelled: not a clock that jumped
    submitted(settings, START, "198.51.100.73")
    [refusal] = Refusal.objects.all()
    with time_machine.travel(START + 100 * DAY, tick=False):
        assert (
            Client().post("/en/security/review/", {"reference": refusal.reference, "message": "Please"}).status_code
            == 302
        )
    with time_machine.travel(START + 185 * DAY, tick=False):
        housekeeping()
    assert Refusal.objects.filter(pk=refusal.pk).exists()  # asked for review on day 100
    assert SecurityEvent.objects.filter(refusals=refusal).exists()  # its event stays with it
    with time_machine.travel(START + 285 * DAY, tick=False):
        housekeeping()
    assert not Refusal.objects.exists()


@pytest.mark.duty("SEC-01")
def test_record_security_event_for_a_sign_in_joins_the_callers_transaction():
    from django.db import transaction  # noqa: PLC0415

    request = RequestFactory().post("/account/sign-in/", REMOTE_ADDR="2001:db8::1", HTTP_USER_AGENT="Firefox/133.0")
    with transaction.atomic():
        event = record_security_event(request, EventKind.SIGN_IN, about="acct-1")
        assert SecurityEvent.objects.filter(pk=event).exists()
        transaction.set_rollback(True)  # the sign-in failed: its event goes with it
    assert not SecurityEvent.objects.exists()
    event = record_security_event(request, EventKind.SIGN_UP)
    stored = SecurityEvent.objects.get(pk=event)
    assert (stored.kind, stored.scope, stored.address, stored.user_agent) == (
        "sign_up",
        "sign_up",
        "2001:db8::1",
        "Firefox/133.0",
    )
