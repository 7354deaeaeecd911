"""The cookie banner in Chromium: no non-essential cookie before a choice, with JavaScript on and off.

Screenshots of the banner and the cookies page in both languages go to the shots directory
(outside the repository) to be looked at.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from piwarden.consent.cookies import COOKIE_NAME
from piwarden.consent.models import CookieConsent
from piwarden.policy.declaration import load_declaration
from tests.browser.test_browser import CSP_PROBE, SHOTS
from tests.screenshots import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def cookie_names(context: BrowserContext) -> set[str]:
    return {c["name"] for c in context.cookies()}


def essential() -> set[str]:
    return {c.name for c in load_declaration().cookies if c.category == "essential"}


def first_visit(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#cookie-banner")).to_be_visible()
    for name in ("functional", "analytics"):
        expect(page.locator(f"#cookie-banner input[name={name}]")).not_to_be_checked()


@pytest.mark.duty("CON-02")
@pytest.mark.duty("CON-05")
@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
def test_reject_all_then_browse_without_the_banner(live_server, browser: Browser, javascript: bool):
    context = browser.new_context(java_script_enabled=javascript)
    try:
        page = context.new_page()
        page.add_init_script(CSP_PROBE)
        first_visit(page, f"{live_server.url}/en/privacy/")
        assert cookie_names(context) == set()  # not even an essential one before a choice
        page.get_by_role("button", name="Reject all").click()
        if javascript:
            expect(page.locator("#cookie-banner")).to_have_count(0)  # closed without a page load
            assert page.url == f"{live_server.url}/en/privacy/"
            assert page.evaluate("window.__cspViolations") == []
        else:
            page.wait_for_url(f"{live_server.url}/en/privacy/")
        assert cookie_names(context) == {COOKIE_NAME}
        assert cookie_names(context) <= essential()
        record = CookieConsent.objects.get()
        assert (record.action, record.functional, record.analytics) == ("reject_all", False, False)
        assert record.channel == ("script" if javascript else "banner")
        for path in ("/", "/consultation/", "/en/contact/"):
            page.goto(live_server.url + path)
            expect(page.locator("#cookie-banner")).to_have_count(0)
        assert cookie_names(context) <= essential()
    finally:
        context.close()


@pytest.mark.duty("CON-02")
@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
def test_accept_all_and_change_it_on_the_cookies_page(live_server, browser: Browser, javascript: bool):
    context = browser.new_context(java_script_enabled=javascript, locale="zh-CN")
    try:
        page = context.new_page()
        first_visit(page, f"{live_server.url}/")
        page.get_by_role("button", name="全部接受").click()
        expect(page.locator("#cookie-banner")).to_have_count(0)
        page.goto(f"{live_server.url}/cookies/")
        expect(page.locator("[data-state=functional]")).to_have_text("已允许")
        expect(page.locator("[data-state=analytics]")).to_have_text("已允许")
        page.locator(".cookie-form input[name=analytics]").uncheck()
        page.locator(".cookie-form").get_by_role("button", name="保存我的选择").click()
        expect(page.locator("[data-state=analytics]")).to_have_text("已拒绝")
        expect(page.locator("[data-state=functional]")).to_have_text("已允许")
        assert list(CookieConsent.objects.order_by("given_at", "id").values_list("action", "analytics")) == [
            ("accept_all", True),
            ("choose", False),
        ]
        page.get_by_role("button", name="删除本网站的 Cookie").click()
        expect(page.get_by_text("您的 Cookie 设置也随之清除，请重新选择。")).to_be_visible()
        assert cookie_names(context) == set()
        page.goto(f"{live_server.url}/")
        expect(page.locator("#cookie-banner")).to_be_visible()
    finally:
        context.close()


@pytest.mark.duty("CON-05")
@pytest.mark.duty("INT-05")
def test_global_privacy_control_refuses_analytics_in_the_browser(live_server, browser: Browser):
    context = browser.new_context(extra_http_headers={"Sec-GPC": "1"})
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/en/")
        expect(page.locator("#cookie-banner input[name=analytics]")).to_be_disabled()
        page.get_by_role("button", name="Accept all").click()
        expect(page.locator("#cookie-banner")).to_have_count(0)
        record = CookieConsent.objects.get()
        assert (record.functional, record.analytics, record.gpc) == (True, False, True)
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots_of_the_banner_and_the_cookies_page(live_server, browser: Browser, width: int):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        for prefix, name in (("", "zh"), ("/en", "en")):
            page.goto(f"{live_server.url}{prefix}/")
            screenshot(page, SHOTS / f"cookie-banner-{name}-{width}.png", full_page=False)
            page.goto(f"{live_server.url}{prefix}/cookies/")
            screenshot(page, SHOTS / f"cookies-page-{name}-{width}.png")
            sideways = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert sideways <= 1, f"{prefix}/cookies/ scrolls sideways at {width} px"
    finally:
        context.close()
