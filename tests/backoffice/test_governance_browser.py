"""The access-review and training pages in Chromium at desktop and phone widths: decided by
clicking, readable without sideways scrolling, no script needed; screenshots kept to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from piwarden.staff.models import AccessReview, AccessReviewLine, Decision
from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import staff_sign_in
from tests.conftest import make_staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_review_and_training_pages_work_by_clicking_at_every_width(
    live_server, browser: Browser, tmp_path: Path, width
):
    carol = make_staff("carol", "privacy_officer", tmp_path)
    alice = make_staff("alice", "sales", tmp_path)
    make_staff("bob", "auditor", tmp_path)
    make_staff("frank", "sales", tmp_path, trained=False)
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN", java_script_enabled=False)
    try:
        page = context.new_page()
        staff_sign_in(page, live_server.url, carol)
        page.goto(f"{live_server.url}/backoffice/reviews/")
        shoot(page, "bo-reviews-empty", width)
        page.locator("main form button[type=submit]").click()
        review = AccessReview.objects.get()
        expect(page.locator("#review-lines tbody tr")).to_have_count(4)
        alice_row = page.locator("#review-lines tr[data-staff=alice]")
        alice_row.locator("button[value=confirm]").click()
        expect(page.locator(".alert-success")).to_be_visible()
        page.locator("#review-lines tr[data-staff=bob] button[value=revoke]").click()
        expect(page.locator("#review-lines tr[data-staff=carol]")).to_contain_text("须由另一位审查人决定")
        shoot(page, "bo-review", width)
        assert AccessReviewLine.objects.get(review=review, staff=alice).decision == Decision.CONFIRMED

        page.goto(f"{live_server.url}/backoffice/training/")
        expect(page.locator("#training-status tr[data-staff=frank]")).to_have_attribute("data-state", "missing")
        page.select_option("[name=staff]", label="frank")
        page.fill("[name=course]", "个人信息保护基础")
        page.fill("[name=completed_on]", "2026-11-30")
        page.locator("main form.form button[type=submit]").click()
        expect(page.locator(".alert-success")).to_be_visible()
        expect(page.locator("#training-status tr[data-staff=frank]")).to_have_attribute("data-state", "current")
        shoot(page, "bo-training", width)
    finally:
        context.close()
