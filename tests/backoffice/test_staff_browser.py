"""The staff page, the grants page and the enrolment page in Chromium at desktop and phone widths.

The properties: nothing scrolls sideways at 390 px, the strict CSP reports no violation (the QR
code is inline SVG, no script, no style attribute), and the forms work without JavaScript.
Screenshots are kept outside the repository to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils.http import urlsafe_base64_encode
from playwright.sync_api import Browser, Page, expect

from piwarden.staff.mail import enrolment_tokens
from piwarden.staff.models import AccessGrant
from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import CSP_PROBE, staff_sign_in
from tests.conftest import make_staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@contextmanager
def chinese_page(browser: Browser, width: int) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    context.add_init_script(CSP_PROBE)
    try:
        yield context.new_page()
    finally:
        context.close()


def no_csp_violations(page: Page) -> None:
    assert page.evaluate("window.__cspViolations") == [], page.url


@pytest.mark.parametrize("width", [1280, 390])
def test_the_staff_page_and_the_enrolment_page(live_server, browser: Browser, tmp_path: Path, width):
    dora = make_staff("dora", "admin", tmp_path)
    make_staff("alice", "sales", tmp_path)
    with chinese_page(browser, width) as page:
        staff_sign_in(page, live_server.url, dora)
        page.goto(f"{live_server.url}/backoffice/staff/")
        page.fill("[name=username]", "erin")
        page.fill("[name=email]", "erin@example.com")
        page.select_option("[name=role]", "sales")
        page.locator("#new-staff button[type=submit]").click()
        expect(page.locator(".alert-success")).to_be_visible()
        expect(page.locator("#staff tbody tr")).to_have_count(3)
        suspend = page.locator("tr[data-username=alice] form", has=page.locator("[name=action][value=suspend]"))
        suspend.locator("button").click()
        expect(page.locator("tr[data-username=alice] .badge-danger")).to_be_visible()
        no_csp_violations(page)
        shoot(page, "bo-staff", width)
    # The newcomer opens the e-mailed link in a browser of their own (the e-mail itself is tested
    # in test_staff_views; here the link is made as the task makes it).
    erin = User.objects.get(username="erin")
    uid = urlsafe_base64_encode(str(erin.pk).encode())
    with chinese_page(browser, width) as enrol:
        enrol.goto(f"{live_server.url}/backoffice/enrol/{uid}/{enrolment_tokens.make_token(erin)}/")
        expect(enrol.locator(".qr svg")).to_be_visible()
        no_csp_violations(enrol)
        shoot(enrol, "bo-enrol", width)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_grants_page_for_the_administrator_and_the_privacy_officer(
    live_server, browser: Browser, tmp_path: Path, width
):
    dora = make_staff("dora", "admin", tmp_path)
    carol = make_staff("carol", "privacy_officer", tmp_path)
    with chinese_page(browser, width) as page:
        staff_sign_in(page, live_server.url, dora)
        page.goto(f"{live_server.url}/backoffice/grants/")
        page.fill("[name=reason]", "Checking a failed acknowledgement e-mail")
        page.select_option("[name=hours]", "2")
        page.locator("#ask button[type=submit]").click()
        expect(page.locator(".alert-success")).to_be_visible()
        no_csp_violations(page)
        shoot(page, "bo-grants-admin", width)
    with chinese_page(browser, width) as other:
        staff_sign_in(other, live_server.url, carol)
        other.goto(f"{live_server.url}/backoffice/grants/")
        expect(other.locator("#to-decide tbody tr[data-grant]")).to_have_count(1)
        no_csp_violations(other)
        shoot(other, "bo-grants-officer", width)
        other.locator("#to-decide button[value=approve]").click()
        expect(other.locator(".alert-success")).to_be_visible()
        shoot(other, "bo-grants-approved", width)
    assert AccessGrant.objects.get().status == AccessGrant.Status.APPROVED
