"""The rights portal in Chromium with JavaScript off: the code read from a real SMTP server's mail."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, expect

from piwarden.rights import clock
from piwarden.rights.models import RequestStatus, RightsRequest
from tests.rights.mailbox import code_in
from tests.smtp import SMTPServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)


@pytest.mark.duty("RGT-08")
@pytest.mark.duty("RGT-10")
@pytest.mark.parametrize(
    "words",
    [("", "更正", "提交请求", "确认"), ("/en", "Correction", "Send the request", "Confirm")],
    ids=["zh-hans", "en"],
)
def test_a_person_asks_confirms_with_the_mailed_code_and_follows_the_request(
    live_server, browser: Browser, smtp: SMTPServer, words: tuple[str, str, str, str]
):
    prefix, kind, send, confirm = words
    address = "zhao.lei@example.com"
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}{prefix}/rights/")
    page.get_by_label(kind).check()
    page.fill("form [name=email]", address)
    page.fill("form [name=details]", "Position: Head of Security")
    page.fill("form [name=captcha_1]", "PASSED")  # CAPTCHA test mode
    page.get_by_role("button", name=send).click()
    page.wait_for_url("**/rights/verify/?ref=*")
    request = RightsRequest.objects.get()
    expect(page.locator("form [name=reference]")).to_have_value(request.reference)

    run_worker()  # the code e-mail, through the SMTP server
    [code_mail] = smtp.collector.to(address)
    page.fill("form [name=code]", code_in(code_mail.body))
    page.get_by_role("button", name=confirm, exact=True).click()
    page.wait_for_url("**/rights/received/")
    request.refresh_from_db()
    assert request.status == RequestStatus.RECEIVED
    due = clock.due_date(clock.day_of_receipt(request.submitted_at))
    expect(page.locator(".reference")).to_have_text(request.reference)
    expect(page.locator(".due-date")).to_have_text(due.date.isoformat())

    run_worker()  # the receipt
    receipt = smtp.collector.to(address)[-1]
    assert request.reference in receipt.subject
    assert due.date.isoformat() in receipt.body

    # Later, in a new browser: reference + e-mail -> a code -> the status with its steps.
    context.close()
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}{prefix}/rights/status/")
    page.fill("form [name=reference]", request.reference.lower())  # typed as a person might
    page.fill("form [name=email]", address.upper())
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/rights/status/code/?ref=*")
    run_worker()
    page.fill("form [name=code]", code_in(smtp.collector.to(address)[-1].body))
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/rights/status/view/")
    expect(page.locator("ol.timeline li")).to_have_count(2)
    expect(page.locator(".due-date")).to_have_text(due.date.isoformat())
    assert "Position: Head of Security" in page.content()
    context.close()
