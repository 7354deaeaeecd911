"""The security role's pages over HTTP with real signed-in staff: the alerts (acknowledged with a
note, audited) and the security events with every identity masked.  Every other role gets the
console's audited 404, and a signed-out visitor the sign-in page."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.db import transaction
from django.test import Client

from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.monitoring.actions import run_monitor
from piwarden.monitoring.models import Alert
from tests.conftest import consultation_data
from tests.monitoring.events import at_prc, record
from tests.rights.staffing import console

pytestmark = pytest.mark.django_db

PAGES = ("/backoffice/alerts/", "/backoffice/alerts/{alert}/", "/backoffice/security/")


@pytest.fixture
def alert(alice, settings) -> Alert:
    settings.PIWARDEN_ALERT_REVEALS = 2
    record(EventType.PII_REVEALED, at_prc(2026, 12, 2, 10, 0), actor=alice, count=3)
    [alert_id] = run_monitor().alerts
    return Alert.objects.get(pk=alert_id)


@pytest.mark.duty("SEC-02")
def test_the_security_auditor_reads_and_acknowledges_an_alert(alert, alice, bob):
    client = console(bob)
    listing = client.get("/backoffice/alerts/")
    assert listing.status_code == HTTPStatus.OK
    page = listing.content.decode()
    assert f'href="/backoffice/alerts/{alert.pk}/"' in page
    assert f"#{alice.pk} alice" in page
    assert 'href="/backoffice/alerts/"' in page
    assert 'href="/backoffice/security/"' in page
    detail = client.get(f"/backoffice/alerts/{alert.pk}/").content.decode()
    assert f"#{alert.first_seq}" in detail
    assert f"#{alert.last_seq}" in detail
    assert f"staff={alice.pk}" in detail  # the link to the audit log, narrowed to the events behind it

    empty = client.post(f"/backoffice/alerts/{alert.pk}/", {"note": "   "})
    assert empty.status_code == HTTPStatus.BAD_REQUEST
    done = client.post(f"/backoffice/alerts/{alert.pk}/", {"note": "Asked alice: a campaign follow-up."})
    assert done.status_code == HTTPStatus.FOUND
    alert.refresh_from_db()
    assert (alert.acknowledged_by_id, alert.note) == (bob.pk, "Asked alice: a campaign follow-up.")
    [event] = AuditEvent.objects.filter(event_type=EventType.ALERT_ACKNOWLEDGED)
    assert (event.actor_id, event.extra["alert"], event.reason) == (bob.pk, alert.pk, alert.note)
    again = client.post(f"/backoffice/alerts/{alert.pk}/", {"note": "twice"})
    assert again.status_code == HTTPStatus.BAD_REQUEST
    assert "twice" not in Alert.objects.get(pk=alert.pk).note
    open_only = client.get("/backoffice/alerts/?open=1").content.decode()
    assert f'href="/backoffice/alerts/{alert.pk}/"' not in open_only
    viewed = AuditEvent.objects.filter(event_type=EventType.SECURITY_VIEWED, actor=bob)
    assert {e.extra["page"] for e in viewed} == {"alerts", "alert"}


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize("role", ["alice", "carol"])
def test_other_roles_get_the_audited_404(alert, alice, carol, role):
    # Sales; and the privacy officer, who reads the audit log but is not the security role.
    user = {"alice": alice, "carol": carol}[role]
    client = console(user)
    for url in PAGES:
        assert client.get(url.format(alert=alert.pk)).status_code == HTTPStatus.NOT_FOUND, url
    assert client.post(f"/backoffice/alerts/{alert.pk}/", {"note": "mine now"}).status_code == HTTPStatus.NOT_FOUND
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is None
    refusals = AuditEvent.objects.filter(event_type=EventType.STAFF_ACCESS_REFUSED, actor=user)
    assert refusals.count() == len(PAGES) + 1
    assert 'href="/backoffice/alerts/"' not in client.get("/backoffice/preferences/").content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(alert):
    client = Client()
    for url in PAGES:
        response = client.get(url.format(alert=alert.pk))
        assert response.status_code == HTTPStatus.FOUND
        assert "/backoffice/login/" in response["Location"]


def test_an_unknown_alert_is_a_404(bob):
    assert console(bob).get("/backoffice/alerts/999999/").status_code == HTTPStatus.NOT_FOUND


@pytest.mark.duty("SEC-02")
@pytest.mark.duty("RET-04")
def test_security_events_show_failed_sign_ins_and_refusals_with_identities_masked(alice, bob, submit):
    failed = Client(REMOTE_ADDR="203.0.113.77")
    for _ in range(2):
        response = failed.post("/backoffice/login/", {"username": "alice", "password": "wrong", "otp_token": "000000"})
        assert response.status_code == HTTPStatus.BAD_REQUEST
    failed.post("/backoffice/login/", {"username": "hunter2-typed-as-name", "password": "x", "otp_token": "1"})
    assert submit().status_code == HTTPStatus.FOUND
    person = Inquiry.objects.get().person
    with transaction.atomic():
        record_event(EventType.PROCESSING_REFUSED, person=person, purpose="marketing", extra={"refusal": "no consent"})

    client = console(bob)
    page = client.get("/backoffice/security/").content.decode()
    assert "203.0.113.0/24 · " in page  # the network, and a keyed fingerprint of the address
    assert "203.0.113.77" not in page
    assert "hunter2-typed-as-name" not in page  # a typed name that is no account's is never shown
    assert f"#{alice.pk} alice" in page
    assert "连续登录失败 2 次" in page  # the count django-axes keeps for that name and address
    assert person.reference not in page
    assert str(person.pk) not in page
    assert person.pk.hex not in page
    assert "no consent" in page  # the refusal's code

    only = client.get("/backoffice/security/", {"kind": "gate_refused"}).content.decode()
    assert "no consent" in only
    assert "203.0.113.0/24" not in only
    later = client.get("/backoffice/security/", {"occurred_from": "2099-01-01"}).content.decode()
    assert "203.0.113.0/24" not in later
    assert "no consent" not in later
    bad = client.get("/backoffice/security/", {"occurred_from": "2026-12-05", "occurred_to": "2026-12-01"})
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    [viewed, *_] = AuditEvent.objects.filter(event_type=EventType.SECURITY_VIEWED, actor=bob).order_by("id")
    assert viewed.extra["page"] == "security"
    views = AuditEvent.objects.filter(event_type=EventType.SECURITY_VIEWED, actor=bob)
    assert views.filter(extra__filter__kind="gate_refused").count() == 1


@pytest.mark.duty("SEC-02")
def test_rate_limit_refusals_and_wrong_captchas_are_listed_by_scope_and_form(bob, settings):
    settings.PIWARDEN_CONSULTATION_RATE = "1/d"
    visitor = Client(REMOTE_ADDR="192.0.2.200")
    assert visitor.post("/consultation/", consultation_data(captcha_1="WRONG")).status_code == HTTPStatus.BAD_REQUEST
    assert visitor.post("/consultation/", consultation_data()).status_code == HTTPStatus.TOO_MANY_REQUESTS
    client = console(bob)
    limited = client.get("/backoffice/security/", {"kind": "rate_limited"}).content.decode()
    assert "频率限制" in limited
    assert "consultation" in limited
    assert "192.0.2" not in limited
    captcha = client.get("/backoffice/security/", {"kind": "captcha_failed"}).content.decode()
    assert "图形验证码填写错误" in captcha
    assert "WRONG" not in captcha
