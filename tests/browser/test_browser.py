"""The site and the staff console in a real browser (Debian's Chromium through Playwright).

What only a browser can show: the form submits as a visitor would fill it, the
browser's own ``required`` check, the CSP as Chromium enforces it (nothing from
another origin, no violation), pages that work with JavaScript off, the staff
console end to end with TOTP — and screenshots to look at.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response, expect

from piwarden.audit.models import AuditEvent
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from tests.conftest import STAFF_PASSWORD, current_code, make_staff
from tests.screenshots import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("PIWARDEN_SHOTS_DIR", Path(tempfile.gettempdir()) / "pw-shots"))  # outside the repo
REASON = "Calling back about the quote"

# Collects Content-Security-Policy violations the page reports (init scripts run outside the page's CSP).
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def visitor(**overrides: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    values = {
        "name": "王小明",
        "phone": "13912345678",
        "email": f"wang-{tag}@example.com",
        "company": f"示例科技有限公司 {tag}",
        "industry": "finance",
        "position": "信息安全经理",
        "region": "CN",
        "product": "data",
    }
    values.update(overrides)
    return values


def fill_by_name(page: Page, values: dict[str, str], *, consent: bool = True) -> None:
    for field in ("name", "phone", "email", "company", "position"):
        page.fill(f"form [name={field}]", values[field])
    for field in ("industry", "region", "product"):
        page.select_option(f"form select[name={field}]", values[field])
    page.fill("form [name=captcha_1]", "PASSED")  # CAPTCHA test mode
    page.check("form [name=age_confirmed]")
    if consent:
        page.check("form [name=consent]")


def send(page: Page) -> None:
    page.locator("form.form button[type=submit]").click()


def staff_sign_in(page: Page, base: str, user: User) -> None:
    page.goto(f"{base}/backoffice/login/")
    page.fill("[name=username]", user.username)
    page.fill("[name=password]", STAFF_PASSWORD)
    page.fill("[name=otp_token]", current_code(user))
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"{base}/backoffice/")


@pytest.fixture
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


# --- the consultation form --------------------------------------------------------------------------


def test_a_visitor_submits_the_consultation_in_chinese(live_server, page: Page):
    values = visitor()
    page.goto(f"{live_server.url}/consultation/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    fill_by_name(page, values)
    send(page)
    page.wait_for_url("**/consultation/received/?ref=*")
    inquiry = Inquiry.objects.get()
    expect(page.locator(".reference")).to_have_text(inquiry.reference)
    assert inquiry.language == "zh-hans"
    assert inquiry.name == values["name"]
    assert inquiry.email == values["email"]
    assert inquiry.company == values["company"]
    assert inquiry.phone == "+86" + values["phone"]
    record = ConsentRecord.objects.get()
    assert record.language == "zh-hans"
    assert record.channel == "web:consultation"
    # The consent text shown is the one from the declaration, in Chinese.
    assert "奇安信" in record.shown_text


def test_a_visitor_submits_the_consultation_in_english(live_server, page: Page):
    values = visitor(name="Jane Doe", position="CISO")
    page.goto(f"{live_server.url}/en/consultation/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label(re.compile(r"^Name\b")).fill(values["name"])
    page.get_by_label("Contact number").fill("+86 139 1234 5678")
    page.get_by_label("E-mail").fill(values["email"])
    page.get_by_label("Company").fill("Example Security Ltd")
    page.get_by_label("Industry").select_option("finance")
    page.get_by_label("Position").fill(values["position"])
    page.get_by_label("Country / region").select_option("CN")
    page.get_by_label("Product or service of interest").select_option("cloud")
    page.locator("[name=captcha_1]").fill("PASSED")
    page.get_by_label("I am 14 or older").check()
    page.get_by_label("I have read the Privacy Policy").check()
    send(page)
    page.wait_for_url("**/en/consultation/received/?ref=*")
    inquiry = Inquiry.objects.get()
    expect(page.locator(".reference")).to_have_text(inquiry.reference)
    assert inquiry.language == "en"
    assert inquiry.product == "cloud"
    assert inquiry.phone == "+8613912345678"
    record = ConsentRecord.objects.get()
    assert record.language == "en"
    assert "Privacy Policy" in record.shown_text


@pytest.mark.duty("CON-02")
def test_without_the_consent_tick_nothing_is_sent(live_server, page: Page):
    page.goto(f"{live_server.url}/consultation/")
    checkbox = page.locator("form [name=consent]")
    expect(checkbox).not_to_be_checked()
    assert checkbox.get_attribute("required") is not None
    fill_by_name(page, visitor(), consent=False)
    # The browser itself refuses: the page stays, the box reports a missing value.
    send(page)
    assert page.url == f"{live_server.url}/consultation/"
    assert checkbox.evaluate("e => e.validity.valueMissing") is True
    # Without the browser's check, the server refuses too, and says so next to the box.
    checkbox.evaluate("e => e.removeAttribute('required')")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        send(page)
    assert posted.value.status == 400
    consent_field = page.locator(".field.consent")
    expect(consent_field).to_have_class("field consent has-error")
    expect(consent_field.locator(".field-error")).to_be_visible()
    expect(page.locator("form [name=email]")).not_to_have_value("")  # what was typed is kept
    assert not Inquiry.objects.exists()
    assert not Person.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_the_form_works_without_javascript(live_server, browser: Browser):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/en/consultation/")
        values = visitor()
        fill_by_name(page, values)
        send(page)
        page.wait_for_url("**/en/consultation/received/?ref=*")
        inquiry = Inquiry.objects.get()
        expect(page.locator(".reference")).to_have_text(inquiry.reference)
        assert inquiry.email == values["email"]
    finally:
        context.close()


# --- the staff console, end to end ---------------------------------------------------------------------


@pytest.mark.duty("SEC-02")
def test_staff_reveal_with_totp_purpose_and_reason_then_the_auditor_sees_it(  # noqa: PLR0917  # fixtures
    live_server, page: Page, browser: Browser, submit, tmp_path, assign
):
    values = visitor(name="Canary " + uuid.uuid4().hex[:8])
    assert submit(**values).status_code == 302
    inquiry = Inquiry.objects.get()
    alice = make_staff("alice", "sales", tmp_path)
    assign(inquiry.reference, alice)  # sales see only the requests assigned to them

    staff_sign_in(page, live_server.url, alice)
    page.get_by_role("link", name=inquiry.reference).click()
    page.wait_for_url(f"**/backoffice/inquiries/{inquiry.reference}/")
    body = page.content()
    for value in (values["name"], values["email"], values["company"]):
        assert value not in body
    expect(page.locator(".masked[data-field=name]")).to_be_visible()

    page.select_option("[name=purpose]", "respond_inquiry")
    page.check("input[name=field_names][value=name]")
    page.check("input[name=field_names][value=email]")
    page.fill("[name=reason]", REASON)
    page.locator("#reveal-form button[type=submit]").click()
    expect(page.locator(".revealed[data-field=name]")).to_have_text(values["name"])
    expect(page.locator(".revealed[data-field=email]")).to_have_text(values["email"])
    expect(page.locator(".masked[data-field=company]")).to_be_visible()
    assert values["company"] not in page.content()

    event = AuditEvent.objects.get(event_type="pii.revealed")
    assert event.actor == alice
    assert event.fields == ["email", "name"]
    assert event.reason == REASON

    bob = make_staff("bob", "auditor", tmp_path)
    auditor: BrowserContext = browser.new_context(locale="zh-CN")  # the console follows the browser: Chinese here
    try:
        audit_page = auditor.new_page()
        staff_sign_in(audit_page, live_server.url, bob)
        audit_page.goto(f"{live_server.url}/backoffice/audit/")
        row = audit_page.locator("#audit tbody tr", has=audit_page.locator("code", has_text="pii.revealed"))
        expect(row).to_have_count(1)
        expect(row).to_contain_text("alice")
        expect(row).to_contain_text("电子邮箱, 姓名")
        expect(row).to_contain_text("respond_inquiry")
        # The auditor never sees the values, and cannot open the request.
        assert values["name"] not in audit_page.content()
        response = audit_page.goto(f"{live_server.url}/backoffice/inquiries/{inquiry.reference}/")
        assert response is not None
        assert response.status == 404
    finally:
        auditor.close()


# --- CSP: nothing from another origin -----------------------------------------------------------------


def test_public_pages_load_nothing_from_another_origin(live_server, page: Page):
    requests: list[str] = []
    failures: list[str] = []
    console: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    def note_failure(response: Response) -> None:
        # The site declares its icon, so Chromium asks for no /favicon.ico: everything requested must load.
        if response.status >= 400:
            failures.append(f"{response.status} {response.url}")

    page.on("response", note_failure)

    def note_console(message: ConsoleMessage) -> None:
        console.append(f"{message.type}: {message.text} ({message.location.get('url')})")

    page.on("console", note_console)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.add_init_script(CSP_PROBE)
    for path in ("/", "/consultation/", "/privacy/", "/en/", "/rights/", "/en/rights/status/"):
        response = page.goto(live_server.url + path)
        assert response is not None
        assert response.status == 200, path
        csp = response.headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp, path
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__cspViolations") == [], path
        # The stylesheet and the CAPTCHA picture really loaded (same origin).
        assert page.evaluate("document.styleSheets.length") >= 1, path
    assert any(re.search(r"/static/piwarden/site\.[0-9a-f]{12}\.css$", url) for url in requests)
    assert any("/captcha/image/" in url for url in requests)
    foreign = [url for url in requests if not url.startswith(live_server.url + "/")]
    assert foreign == []
    assert failures == []
    csp_messages = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert csp_messages == []
    assert [m for m in console if m.startswith(("error", "pageerror"))] == []


# --- screenshots -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots(live_server, browser: Browser, tmp_path, shots: Path, width: int, assign):  # noqa: PLR0917
    context = browser.new_context(viewport={"width": width, "height": 900})
    broken: list[str] = []

    def note_failure(response: Response) -> None:
        if response.status >= 400 and response.request.method == "GET":
            broken.append(f"{response.status} {response.url}")

    def note_failed_request(request: Request) -> None:
        broken.append(f"failed {request.url}")

    try:
        page = context.new_page()
        page.on("response", note_failure)
        page.on("requestfailed", note_failed_request)
        page.goto(f"{live_server.url}/consultation/")
        screenshot(page, shots / f"consultation-{width}.png")
        values = visitor(name="王小明")
        fill_by_name(page, values)
        send(page)
        page.wait_for_url("**/consultation/received/?ref=*")
        screenshot(page, shots / f"received-{width}.png")

        alice = make_staff("alice", "sales", tmp_path)
        inquiry = Inquiry.objects.get()
        assign(inquiry.reference, alice)  # sales see only the requests assigned to them
        staff_sign_in(page, live_server.url, alice)
        screenshot(page, shots / f"inbox-{width}.png")
        page.get_by_role("link", name=inquiry.reference).click()
        page.select_option("[name=purpose]", "respond_inquiry")
        page.check("input[name=field_names][value=name]")
        page.check("input[name=field_names][value=email]")
        page.fill("[name=reason]", REASON)
        page.locator("#reveal-form button[type=submit]").click()
        expect(page.locator(".revealed[data-field=name]")).to_have_text(values["name"])
        screenshot(page, shots / f"revealed-{width}.png")
        # Nothing on these pages scrolls sideways at this width (tables scroll inside their own box).
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
    finally:
        context.close()
    assert broken == []
    for name in ("consultation", "received", "inbox", "revealed"):
        assert (shots / f"{name}-{width}.png").stat().st_size > 10_000
