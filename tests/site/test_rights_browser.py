"""The rights portal in Chromium with JavaScript off: the code read from a real SMTP server's mail."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, expect

from piwarden.rights import clock
from piwarden.rights.models import RequestKind, RequestStatus, RightsRequest
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
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/rights/status/code/?ref=*")
    run_worker()
    page.fill("form [name=code]", code_in(smtp.collector.to(address)[-1].body))
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/rights/status/view/")
    expect(page.locator("ol.timeline li")).to_have_count(2)
    expect(page.locator(".due-date")).to_have_text(due.date.isoformat())
    assert "Position: Head of Security" in page.content()
    context.close()


@pytest.mark.duty("RGT-08")
def test_every_kind_is_asked_and_confirmed_in_the_browser(live_server, browser: Browser, smtp: SMTPServer):
    """Each kind of request, from the form to its receipt, with the code read from the mail (zh-hans;
    the English pages are the same forms, run above).  What staff then do is run over HTTP per kind
    (tests/site/test_rights_every_kind.py)."""
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    for kind in RequestKind:
        address = f"{kind.value.replace('_', '.')}@example.com"
        page.goto(f"{live_server.url}/rights/")
        page.locator(f"form input[name=kind][value={kind.value}]").check()
        if kind == RequestKind.DECEASED_RELATIVE:
            page.locator("form input[name=acting_as][value=close_relative_of_deceased]").check()
        page.fill("form [name=email]", address)
        page.fill("form [name=details]", f"关于 {kind.value} 的说明")
        page.fill("form [name=captcha_1]", "PASSED")
        page.get_by_role("button", name="提交请求").click()
        page.wait_for_url("**/rights/verify/?ref=*")
        run_worker()
        [code_mail] = smtp.collector.to(address)
        page.fill("form [name=code]", code_in(code_mail.body))
        page.get_by_role("button", name="确认", exact=True).click()
        page.wait_for_url("**/rights/received/")
        request = RightsRequest.objects.get(kind=kind)
        expect(page.locator(".reference")).to_have_text(request.reference)
        assert request.status == RequestStatus.RECEIVED
    context.close()
