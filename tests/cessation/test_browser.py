"""The cessation notice and the closed consultation form in Chromium, in both languages, with
screenshots to look at (PIWARDEN_SHOTS_DIR, by default outside the repository)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from piwarden.cessation import actions
from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import CSP_PROBE, SHOTS
from tests.cessation.helpers import REASON, a_month_ahead, announce
from tests.screenshots import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.duty("RET-07")]


@pytest.mark.parametrize(
    ("prefix", "language", "heading", "closed"),
    [
        ("", "zh-hans", "本网站将于", "咨询请求已停止受理"),
        ("/en", "en", "This website closes on", "Consultation requests are closed"),
    ],
)
def test_the_notice_on_the_home_page_and_the_closed_form(live_server, page: Page, prefix, language, heading, closed):  # noqa: PLR0917  # pytest passes the parameters by name
    date = a_month_ahead()
    actions.announce(date, reason=REASON)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}{prefix}/")
    notice = page.locator(".cessation-notice")
    expect(notice).to_be_visible()
    expect(notice.locator("h2")).to_contain_text(heading)
    screenshot(page, SHOTS / f"cessation-home-{language}.png")
    page.goto(f"{live_server.url}{prefix}/consultation/")
    expect(page.locator("h1")).to_have_text(closed)
    expect(page.locator("form [name=email]")).to_have_count(0)
    screenshot(page, SHOTS / f"cessation-consultation-{language}.png")
    # Followed from the closed page: the rights portal still takes requests.
    page.locator("main a[href$='/rights/']").first.click()
    expect(page.locator("form [name=email]")).to_have_count(1)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_notice_and_the_closed_sign_up_read_at_every_width(live_server, browser: Browser, width: int) -> None:
    """As the operator announces it (`piwarden cessation announce`): the notice on the home page and
    the sign-up page that no longer opens accounts, both languages, nothing sideways, no CSP breach."""
    announce(a_month_ahead())
    for prefix, language, closed in (("", "zh", "账号注册已关闭"), ("/en", "en", "Sign-up is closed")):
        context = browser.new_context(viewport={"width": width, "height": 900})
        try:
            page = context.new_page()
            page.add_init_script(CSP_PROBE)
            page.goto(f"{live_server.url}{prefix}/")
            expect(page.locator(".cessation-notice")).to_be_visible()
            shoot(page, f"cessation-home-{language}", width)
            assert page.evaluate("window.__cspViolations") == []
            page.goto(f"{live_server.url}{prefix}/account/sign-up/")
            expect(page.locator("h1")).to_have_text(closed)
            expect(page.locator("form [name=email]")).to_have_count(0)
            expect(page.locator(".cessation-notice")).to_be_visible()
            shoot(page, f"cessation-sign-up-{language}", width)
            assert page.evaluate("window.__cspViolations") == []
        finally:
            context.close()
