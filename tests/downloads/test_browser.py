"""The downloads page in Chromium, both languages: it shows the library, breaks no CSP rule, and a
click saves the file under its own (Chinese) name instead of opening it.

Screenshots go to the shots directory (outside the repository) to be looked at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import CSP_PROBE, SHOTS
from tests.downloads.conftest import PDF, docx_bytes, publish
from tests.screenshots import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def library(admin: User) -> None:
    """Two resources: a PDF, and a Word file with a Chinese name."""
    publish(admin)
    publish(
        admin,
        title="数据安全产品手册",
        title_en="Data Security Datasheet",
        filename="数据安全产品手册.docx",
        content=docx_bytes(),
    )


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize(
    ("prefix", "heading", "title"), [("", "资料下载", "零信任白皮书"), ("/en", "Downloads", "Zero Trust White Paper")]
)
def test_the_downloads_page_lists_and_saves_files(  # noqa: PLR0917  # parametrised
    live_server, browser: Browser, library, prefix, heading, title
):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.add_init_script(CSP_PROBE)
        page.goto(f"{live_server.url}{prefix}/downloads/")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.locator("li.download")).to_have_count(2)
        expect(page.locator("li.download").last).to_contain_text(title)
        SHOTS.mkdir(parents=True, exist_ok=True)
        screenshot(page, str(SHOTS / f"downloads-{prefix.strip('/') or 'zh'}.png"))
        with page.expect_download() as started:
            page.locator("li.download").last.get_by_role("link").click()
        download = started.value
        assert download.suggested_filename == "零信任白皮书 2026.pdf"
        assert Path(download.path()).read_bytes() == PDF
        assert page.url == f"{live_server.url}{prefix}/downloads/"  # saved, not opened in the tab
        assert page.evaluate("window.__cspViolations") == []
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_library_reads_at_every_width(live_server, browser: Browser, library, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.add_init_script(CSP_PROBE)
        for prefix, language in (("", "zh"), ("/en", "en")):
            page.goto(f"{live_server.url}{prefix}/downloads/")
            expect(page.locator("li.download")).to_have_count(2)
            shoot(page, f"downloads-{language}", width)
            assert page.evaluate("window.__cspViolations") == []
    finally:
        context.close()
