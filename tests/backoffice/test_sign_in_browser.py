"""Staff sign-in and the console language in Chromium: what a staff member sees, at 1280 and 390 px."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from piwarden.staff.models import Authenticator
from tests.conftest import STAFF_PASSWORD, current_code, make_staff
from tests.screenshots import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("PIWARDEN_SHOTS_DIR", Path(tempfile.gettempdir()) / "pw-shots"))  # outside the repo


def no_sideways_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def fill_sign_in(page: Page, username: str, password: str, code: str) -> None:
    page.fill("[name=username]", username)
    page.fill("[name=password]", password)
    page.fill("[name=otp_token]", code)
    page.locator("main form button[type=submit]").click()


@pytest.mark.parametrize("width", [1280, 390])
def test_sign_in_errors_and_the_console_in_the_browser_language(live_server, browser: Browser, tmp_path, width):
    SHOTS.mkdir(parents=True, exist_ok=True)
    alice = make_staff("alice", "sales", tmp_path)
    # The wrong codes are bob's: each one makes his authenticator wait longer before the next
    # try (django-otp's throttle), which would refuse alice's right code just after.
    make_staff("bob", "sales", tmp_path)
    base = live_server.url
    for locale, wrong in (
        ("en-GB", "The username, password or authenticator code is not right."),
        ("zh-CN", "用户名、密码或动态码不正确"),
    ):
        context = browser.new_context(viewport={"width": width, "height": 900}, locale=locale)
        try:
            page = context.new_page()
            page.goto(f"{base}/backoffice/login/")
            fill_sign_in(page, "bob", STAFF_PASSWORD, "000000")  # the right password, a wrong code
            expect(page.locator(".alert-error")).to_contain_text(wrong)
            expect(page.locator("[name=otp_token]")).to_have_value("")  # the code is not echoed back
            screenshot(page, SHOTS / f"sign-in-error-{locale}-{width}.png")
            assert no_sideways_scroll(page)
        finally:
            context.close()

    # The two wrong codes throttle her authenticator for 2 s (django-otp doubles the wait with each
    # failure); a person would wait as long before the right code is taken.
    device = Authenticator.objects.get(user=alice)
    deadline = time.monotonic() + 10
    while not device.verify_is_allowed()[0] and time.monotonic() < deadline:
        time.sleep(0.1)

    # Signed in with an English browser, alice chooses Chinese for the console.
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-GB")
    try:
        page = context.new_page()
        page.goto(f"{base}/backoffice/login/")
        fill_sign_in(page, "alice", STAFF_PASSWORD, current_code(alice))
        page.wait_for_url(f"{base}/backoffice/")
        expect(page.locator("h1")).to_have_text("Consultation requests")
        page.get_by_role("link", name="Language").click()
        screenshot(page, SHOTS / f"preferences-en-{width}.png")
        page.get_by_label("简体中文").check()
        page.locator("main form button[type=submit]").click()
        expect(page.locator(".alert-success")).to_contain_text("已保存")
        screenshot(page, SHOTS / f"preferences-saved-zh-{width}.png")
        assert no_sideways_scroll(page)
        page.goto(f"{base}/backoffice/")
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    finally:
        context.close()
