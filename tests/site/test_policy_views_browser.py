"""The notice of a material change and the versions page in Chromium, both languages, desktop and
phone widths: closed by clicking, with no script; readable without sideways scrolling; screenshots
kept to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.backoffice.test_console_browser import shoot
from tests.site.test_policy_views import NOTICE_EN, NOTICE_ZH, material_change

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.duty("CHG-01")
@pytest.mark.parametrize("width", [1280, 390])
def test_the_notice_is_closed_by_clicking_and_the_versions_page_reads_in_both_languages(
    live_server, browser: Browser, declared, tmp_path: Path, width
) -> None:
    material_change(declared, tmp_path)
    for prefix, language, notice in (("", "zh", NOTICE_ZH), ("/en", "en", NOTICE_EN)):
        context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=False)
        try:
            page = context.new_page()
            page.goto(f"{live_server.url}{prefix}/")
            banner = page.locator(".policy-notice")
            expect(banner).to_contain_text(notice)
            shoot(page, f"policy-notice-{language}", width)
            page.goto(f"{live_server.url}{prefix}/privacy/versions/")
            expect(page.locator("#v2 table.changes")).to_contain_text("95016")
            shoot(page, f"policy-versions-{language}", width)
            page.goto(f"{live_server.url}{prefix}/contact/")
            page.locator(".policy-notice button[type=submit]").click()
            expect(page).to_have_url(f"{live_server.url}{prefix}/contact/")
            expect(page.locator(".policy-notice")).to_have_count(0)
            page.goto(f"{live_server.url}{prefix}/privacy/")
            expect(page.locator(".policy-notice")).to_have_count(0)
        finally:
            context.close()
