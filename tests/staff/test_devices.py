"""A staff sign-in from a browser the account never used raises an alert (issue 8 §2).

The browser is known by a long-lived random cookie (``piwarden_staff_device``, the console's
path only); the server keeps only a keyed hash of it.  A sign-in whose cookie is unknown for the
account writes ``staff.new_device`` and e-mails the staff member, through the real SMTP server
(aiosmtpd) the task worker sends to; a sign-in from a known browser does neither.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from piwarden.audit.models import AuditEvent
from piwarden.staff import devices
from piwarden.staff.models import KnownDevice
from tests.conftest import make_staff, sign_in
from tests.smtp import SMTPServer

# The task worker closes "old" connections between tasks, which would end a test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS = "erin@example.com"


@pytest.fixture
def erin(tmp_path: Path) -> User:
    """A sales consultant with an e-mail address (the alert's recipient)."""
    return make_staff("erin", "sales", tmp_path, email=ADDRESS)


def run_tasks() -> None:
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)


def new_device_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type="staff.new_device").order_by("id"))


@pytest.mark.duty("SEC-02")
def test_a_sign_in_from_a_new_browser_is_recorded_and_mailed(erin: User, smtp: SMTPServer) -> None:
    browser = Client(HTTP_USER_AGENT="Mozilla/5.0 (test) Chromium", REMOTE_ADDR="203.0.113.7")
    response = sign_in(browser, erin)
    assert response.status_code == HTTPStatus.FOUND

    cookie = response.cookies[devices.COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/backoffice/"
    assert int(cookie["max-age"]) == devices.MAX_AGE
    (device,) = KnownDevice.objects.filter(user=erin)
    assert device.digest == devices.digest(cookie.value)
    assert cookie.value not in device.digest  # only the keyed hash is kept
    for column in (device.digest, str(device.first_seen_at)):
        assert "203.0.113.7" not in column
        assert "Chromium" not in column
    (event,) = new_device_events()
    assert (event.actor, event.purpose, event.extra) == (erin, "security", {"device": device.pk, "mailed": True})
    assert smtp.collector.received == []  # queued with the sign-in, sent by the worker

    run_tasks()

    (mail,) = smtp.collector.to(ADDRESS)
    assert mail.subject == "您的员工账号从新设备登录"
    assert "erin" in mail.body
    assert "203.0.113.7" not in mail.body
    device.refresh_from_db()
    assert device.alerted_at is not None
    run_tasks()
    assert len(smtp.collector.to(ADDRESS)) == 1  # sent once


def test_the_same_browser_signing_in_again_raises_nothing(erin: User, smtp: SMTPServer) -> None:
    browser = Client()
    assert sign_in(browser, erin).status_code == HTTPStatus.FOUND
    run_tasks()
    browser.post("/backoffice/logout/")
    first_seen = KnownDevice.objects.get(user=erin).last_seen_at

    again = sign_in(browser, erin)

    assert again.status_code == HTTPStatus.FOUND
    assert devices.COOKIE not in again.cookies  # the browser keeps the cookie it has
    assert len(new_device_events()) == 1
    assert AuditEvent.objects.filter(event_type="staff.signed_in").count() == 2
    assert KnownDevice.objects.get(user=erin).last_seen_at > first_seen
    run_tasks()
    assert len(smtp.collector.to(ADDRESS)) == 1


def test_another_browser_or_an_unknown_cookie_is_a_new_device(erin: User, smtp: SMTPServer) -> None:
    assert sign_in(Client(), erin).status_code == HTTPStatus.FOUND
    other = Client()
    assert sign_in(other, erin).status_code == HTTPStatus.FOUND
    forged = Client()
    forged.cookies[devices.COOKIE] = devices.new_token()  # well formed, never seen for this account
    assert sign_in(forged, erin).status_code == HTTPStatus.FOUND
    junk = Client()
    junk.cookies[devices.COOKIE] = "not-a-device-cookie"
    response = sign_in(junk, erin)
    assert response.cookies[devices.COOKIE].value != "not-a-device-cookie"  # replaced by a real one

    assert len(new_device_events()) == 4
    assert KnownDevice.objects.filter(user=erin).count() == 4
    run_tasks()
    assert len(smtp.collector.to(ADDRESS)) == 4


def test_an_account_without_an_address_is_recorded_but_not_mailed(alice: User, smtp: SMTPServer) -> None:
    assert sign_in(Client(), alice).status_code == HTTPStatus.FOUND
    (event,) = new_device_events()
    assert event.extra["mailed"] is False
    run_tasks()
    assert smtp.collector.received == []
