"""The CAPTCHA in Chromium: the "new picture" button with JavaScript off; the picture decodes at its size."""

from __future__ import annotations

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect

from piwarden.inquiries.models import Inquiry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(("prefix", "button"), [("", "换一张图片"), ("/en", "Show a new picture")])
def test_a_new_picture_keeps_the_form_and_enter_still_sends_it(live_server, browser: Browser, prefix, button):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}{prefix}/consultation/")
    picture = page.locator("img.captcha")
    first = picture.get_attribute("src")
    page.fill("form [name=name]", "สมศักดิ์")
    page.fill("form [name=email]", "somsak@example.co.th")
    page.select_option("form select[name=region]", "TH")
    page.get_by_role("button", name=button).click()  # fields still empty: the button skips required checks

    expect(page.locator("form [name=name]")).to_have_value("สมศักดิ์")
    expect(page.locator("form [name=email]")).to_have_value("somsak@example.co.th")
    expect(page.locator("form select[name=region]")).to_have_value("TH")
    assert picture.get_attribute("src") != first
    assert not Inquiry.objects.exists()

    # Enter in a field presses the form's first submit button: it sends the request, not the new-picture one.
    page.fill("form [name=phone]", "13800138000")
    page.fill("form [name=company]", "Example Co")
    page.select_option("form select[name=industry]", "finance")
    page.fill("form [name=position]", "CTO")
    page.select_option("form select[name=product]", "data")
    page.check("form [name=age_confirmed]")
    page.check("form [name=consent]")
    page.fill("form [name=captcha_1]", "PASSED")  # CAPTCHA test mode
    page.press("form [name=captcha_1]", "Enter")
    page.wait_for_url("**/consultation/received/?ref=*")
    assert Inquiry.objects.get().name == "สมศักดิ์"
    context.close()


def test_chromium_shows_the_picture_at_its_size(live_server, page: Page):
    page.goto(f"{live_server.url}/consultation/")
    picture = page.locator("img.captcha")
    picture.evaluate("img => img.decode()")  # rejects if the browser cannot decode the picture
    assert picture.evaluate("img => [img.naturalWidth, img.naturalHeight]") == list(settings.CAPTCHA_IMAGE_SIZE)
