"""The back office's completion of a guardian's request, in a real browser: the child's record and
the right chosen, a non-guardian refused with the reason, the guardian's request executed."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from piwarden.rights.models import RequestStatus
from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import staff_sign_in
from tests.conftest import make_staff
from tests.rights.test_guardian_fulfilment import CHILD, child_with_guardian, guardians_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.duty("CHD-05")]


@pytest.fixture(autouse=True)
def _captcha_test_mode(settings):
    settings.CAPTCHA_TEST_MODE = True


def test_staff_complete_a_guardians_deletion_in_the_browser(live_server, browser: Browser, tmp_path: Path):
    child = child_with_guardian()
    stranger = guardians_request("stranger@example.com")
    request = guardians_request()
    carol = make_staff("carol", "privacy_officer", tmp_path)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        staff_sign_in(page, live_server.url, carol)
        for found, status in ((stranger, 400), (request, 200)):
            page.goto(f"{live_server.url}/backoffice/rights/{found.reference}/")
            page.select_option("[name=subject_right]", "deletion")
            page.fill("[name=subject_email]", CHILD["email"])
            page.fill("[name=result]", "我们已删除您孩子的个人信息。")
            if status == 400:
                page.locator("form:has(input[name=action][value=complete])").scroll_into_view_if_needed()
                shoot(page, "bo-guardian-complete", 1280)
            with page.expect_response(
                lambda r, ref=found.reference: ref in r.url and r.request.method == "POST"
            ) as posted:
                page.locator("form:has(input[name=action][value=complete]) button[type=submit]").click()
            assert (posted.value.status == 400) is (status == 400)
            if status == 400:
                expect(page.get_by_text("请求人不是曾为使用该电子邮箱的儿童作出同意的监护人")).to_be_visible()
                shoot(page, "bo-guardian-refused", 1280)
        request.refresh_from_db()
        assert request.status == RequestStatus.COMPLETED
        child.refresh_from_db()
        assert child.is_erased
    finally:
        context.close()
