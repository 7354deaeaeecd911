"""A refusal and its review in Chromium with JavaScript off: the refusal page's reference followed
to the review form, whose answer the page then shows (both languages; pages looked at as PNGs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from piwarden.security.models import Refusal
from tests.screenshots import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("PIWARDEN_SCREENSHOTS", "/tmp/piwarden-shots"))  # noqa: S108  # a place to look at them


@pytest.mark.duty("RGT-12")
@pytest.mark.parametrize(
    "words", [("", "申请人工复核", "您的请求未被受理"), ("/en", "Ask for a review", "Your request was not accepted")]
)
def test_a_refused_person_follows_the_reference_to_the_review_form(live_server, browser: Browser, settings, words):
    prefix, ask, refused_title = words
    settings.PIWARDEN_RIGHTS_RATE = "1/d"
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    for _ in range(2):
        page.goto(f"{live_server.url}{prefix}/rights/status/")
        page.fill("form [name=reference]", "ABCDEFGHJK")
        page.fill("form [name=email]", "a@example.com")
        page.locator("form button.btn-lg[type=submit]").click()
    expect(page.locator("h1")).to_have_text(refused_title)
    reference = page.locator("#reference").inner_text()
    assert Refusal.objects.filter(reference=reference).exists()
    SHOTS.mkdir(parents=True, exist_ok=True)
    screenshot(page, str(SHOTS / f"refused{prefix.replace('/', '-')}.png"))

    page.get_by_role("link", name=ask).click()
    expect(page.locator("[name=reference]")).to_have_value(reference)
    page.fill("[name=message]", "I checked my own request twice.")
    page.locator("#review-form button[type=submit]").click()
    expect(page.locator("#review-status")).to_contain_text(reference)
    screenshot(page, str(SHOTS / f"review{prefix.replace('/', '-')}.png"))
    assert Refusal.objects.get(reference=reference).review_requested_at is not None
    context.close()
