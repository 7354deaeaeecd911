"""The security auditor's alerts and security events in Chromium at desktop and phone widths:
nothing scrolls sideways, the strict CSP holds, and an alert is acknowledged without JavaScript
doing anything but the browser's own form."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from piwarden.audit.models import EventType
from piwarden.monitoring.actions import run_monitor
from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import CSP_PROBE, staff_sign_in
from tests.conftest import make_staff
from tests.monitoring.events import at_prc, record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_alerts_and_security_events_read_at_every_width(live_server, browser: Browser, settings, tmp_path: Path, width):
    settings.PIWARDEN_ALERT_REVEALS = 2
    settings.PIWARDEN_ALERT_SIGN_IN_FAILURES = 1
    alice = make_staff("alice", "sales", tmp_path)
    bob = make_staff("bob", "auditor", tmp_path)
    record(EventType.PII_REVEALED, at_prc(2026, 12, 5, 22, 0), actor=alice, count=3)  # a Saturday night
    record(EventType.STAFF_SIGN_IN_FAILED, at_prc(2026, 12, 2, 10, 0), actor=alice, count=2)
    record(EventType.PROCESSING_REFUSED, at_prc(2026, 12, 2, 11, 0))
    run_monitor()
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    context.add_init_script(CSP_PROBE)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/backoffice/login/")
        page.fill("[name=username]", "alice")
        page.fill("[name=password]", "not the password")
        page.fill("[name=otp_token]", "123456")
        page.locator("main form button[type=submit]").click()
        staff_sign_in(page, live_server.url, bob)

        page.goto(f"{live_server.url}/backoffice/alerts/")
        expect(page.locator("#alerts tbody tr")).to_have_count(3)
        shoot(page, "bo-alerts", width)
        page.locator("#alerts tbody tr a").first.click()
        page.fill("[name=note]", "Asked the team lead: a planned follow-up after the trade fair.")
        page.locator("#acknowledge button[type=submit]").click()
        expect(page.locator(".alert-success")).to_be_visible()
        expect(page.locator("#note")).to_contain_text("trade fair")
        shoot(page, "bo-alert", width)

        page.goto(f"{live_server.url}/backoffice/security/")
        expect(page.locator("#security-events tbody tr").first).to_be_visible()
        expect(page.locator("#security-events")).to_contain_text("127.0.0.0/24")
        expect(page.locator("#security-events")).not_to_contain_text("127.0.0.1")
        shoot(page, "bo-security", width)
        assert page.evaluate("window.__cspViolations") == []
    finally:
        context.close()
