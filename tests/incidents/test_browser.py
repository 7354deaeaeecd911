"""The register, an incident, its notice page and the public notice in Chromium at desktop and
phone widths: nothing scrolls sideways, the strict CSP holds, and the steps are plain forms that
work without JavaScript.  The screenshots are looked at (var/screenshots/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from piwarden.incidents.actions import publish_notice
from piwarden.incidents.models import Incident, State
from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import CSP_PROBE, staff_sign_in
from tests.conftest import make_staff
from tests.incidents.making import acting, an_incident, ready_to_notify

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.duty("SEC-04")
@pytest.mark.duty("SEC-05")
@pytest.mark.parametrize("width", [1280, 390])
def test_the_register_and_the_public_notice_read_at_every_width(live_server, browser: Browser, tmp_path: Path, width):
    carol = acting(make_staff("carol", "privacy_officer", tmp_path))
    published = ready_to_notify(carol, minors_affected=1)
    publish_notice(carol, published.slug)
    fresh = an_incident(carol, title="Phishing of a sales mailbox", grade="general", categories=())
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    context.add_init_script(CSP_PROBE)
    try:
        page = context.new_page()
        staff_sign_in(page, live_server.url, carol)
        page.goto(f"{live_server.url}/backoffice/incidents/")
        expect(page.locator("#incidents tbody tr")).to_have_count(2)
        shoot(page, "bo-incidents", width)
        page.locator(f"#incidents tr[data-incident='{fresh.slug}'] a").click()
        page.locator("button[value=activate_plan]").click()
        expect(page.locator(".alert-success")).to_be_visible()
        expect(page.locator(".incident-steps li[aria-current=step]")).to_contain_text("已启动预案")
        shoot(page, "bo-incident", width)
        page.goto(f"{live_server.url}/backoffice/incidents/{published.slug}/notice/")
        expect(page.locator("#guardians-told")).to_contain_text("将同时告知其监护人")  # the children app registers them
        shoot(page, "bo-incident-notice", width)
        page.goto(f"{live_server.url}/backoffice/incidents/{published.slug}/report/print/")
        shoot(page, "bo-incident-report", width)

        page.goto(f"{live_server.url}/incidents/{published.slug}/")
        expect(page.locator("#incident-notice")).to_contain_text("服务器组件存在未修复的漏洞")
        shoot(page, "incident-notice-zh", width)
        page.goto(f"{live_server.url}/en/incidents/{published.slug}/")
        expect(page.locator("#incident-notice")).to_contain_text("An unpatched component")
        shoot(page, "incident-notice-en", width)
        assert page.evaluate("window.__cspViolations") == []
    finally:
        context.close()
    assert Incident.objects.get(slug=fresh.slug).state == State.PLAN_ACTIVATED
