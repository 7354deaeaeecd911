"""The staff console's inbox, request and audit pages in Chromium at desktop and phone widths.

The property: at 390 px nothing scrolls sideways, not even inside a table (a log read by
scrolling each row left and right is not readable); screenshots are kept to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from piwarden.inquiries.models import Inquiry
from tests.browser.test_browser import REASON, SHOTS, staff_sign_in, visitor
from tests.conftest import make_staff
from tests.screenshots import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIDEWAYS = """() => {
  const root = document.documentElement;
  const boxes = [...document.querySelectorAll('.table-scroll')];
  return Math.max(root.scrollWidth - root.clientWidth, ...boxes.map(b => b.scrollWidth - b.clientWidth), 0);
}"""


def shoot(page: Page, name: str, width: int) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    screenshot(page, SHOTS / f"{name}-{width}.png")
    assert page.evaluate(SIDEWAYS) <= 1, f"{name} scrolls sideways at {width} px"


@pytest.mark.parametrize("width", [1280, 390])
def test_inbox_request_and_audit_pages_read_at_every_width(
    live_server, browser: Browser, submit, tmp_path: Path, width
):
    for n in range(3):
        assert submit(**visitor(product=("data", "cloud", "soc")[n])).status_code == 302
    inquiry = Inquiry.objects.order_by("submitted_at").first()
    assert inquiry is not None
    carol = make_staff("carol", "privacy_officer", tmp_path)
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        staff_sign_in(page, live_server.url, carol)
        page.goto(f"{live_server.url}/backoffice/?product=data")
        expect(page.locator("#inbox tbody tr")).to_have_count(1)
        shoot(page, "bo-inbox", width)

        page.goto(f"{live_server.url}/backoffice/inquiries/{inquiry.reference}/")
        page.check("input[name=field_names][value=name]")
        page.fill("[name=reason]", "short")  # refused: too short (the browser's own minlength is bypassed)
        page.evaluate("document.querySelector('[name=reason]').removeAttribute('minlength')")
        page.locator("#reveal-form button[type=submit]").click()
        expect(page.locator(".alert-error")).to_be_visible()
        shoot(page, "bo-refused", width)
        page.select_option("[name=purpose]", "respond_inquiry")
        page.check("input[name=field_names][value=name]")
        page.check("input[name=field_names][value=region]")
        page.fill("[name=reason]", REASON)
        page.locator("#reveal-form button[type=submit]").click()
        expect(page.locator(".revealed[data-field=name]")).to_be_visible()
        shoot(page, "bo-inquiry", width)

        page.goto(f"{live_server.url}/backoffice/audit/")
        row = page.locator("#audit tbody tr", has=page.locator("code", has_text="pii.reveal_refused"))
        expect(row).to_contain_text("理由过短")
        expect(row).to_contain_text("答复客户的咨询请求")
        shoot(page, "bo-audit", width)
    finally:
        context.close()
