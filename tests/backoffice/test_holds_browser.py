"""The legal holds page in Chromium at desktop and phone widths: a hold placed and lifted by
clicking, without script; screenshots kept to look at."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from piwarden.retention.models import LegalHold
from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import staff_sign_in
from tests.conftest import make_staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_a_hold_is_placed_and_lifted_by_clicking_at_every_width(live_server, browser: Browser, tmp_path: Path, width):
    carol = make_staff("carol", "privacy_officer", tmp_path)
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN", java_script_enabled=False)
    try:
        page = context.new_page()
        staff_sign_in(page, live_server.url, carol)
        page.goto(f"{live_server.url}/backoffice/holds/")
        expect(page.locator("#holds")).to_contain_text("尚未设立任何法律保全")
        page.select_option("[name=category]", value="consultation")
        page.fill("[name=reason]", "监管调查 2026-4 号")
        page.fill("[name=ends_on]", (timezone.now() + datetime.timedelta(days=90)).date().isoformat())
        page.locator("main form.form:not(.form-inline) button[type=submit]").click()
        expect(page.locator(".alert-success")).to_be_visible()
        expect(page.locator("#holds tbody tr")).to_have_count(1)
        shoot(page, "bo-holds", width)
        page.fill("#holds input[name=reason]", "调查已结束，解除保全")
        page.locator("#holds button[type=submit]").click()
        expect(page.locator(".alert-success")).to_be_visible()
        shoot(page, "bo-holds-lifted", width)
        assert LegalHold.objects.get().lifted_at is not None
    finally:
        context.close()
