"""A child's sign-up in Chromium (issue 9 §2 tests): under 14, the account stays closed until the
guardian consents through the link e-mailed to them (read off a real SMTP server); only then is the
child's confirmation link sent, and the child can sign in.  Before the guardian acts, nothing of
the child is held: signing in answers as for an unknown address, and no person exists."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, BrowserContext, expect

from piwarden.accounts.models import Account, AccountState
from piwarden.people.models import Person
from piwarden.vault.blind import email_index
from tests.accounts.helpers import PASSWORD
from tests.accounts.in_browser import WORDS, link_from
from tests.browser.test_browser import CSP_PROBE
from tests.smtp import SMTPServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.duty("CHD-01"),
    pytest.mark.duty("CHD-02"),
]

CHILD = "xiao.ming.browser@example.com"
GUARDIAN = "parent.of.ming.browser@example.com"


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)


def sign_in(context: BrowserContext, base: str) -> None:
    page = context.new_page()
    page.goto(f"{base}/account/sign-in/")
    page.fill("[name=email]", CHILD)
    page.fill("[name=password]", PASSWORD)
    page.locator("form.form").get_by_role("button", name=WORDS["zh"]["sign_in"]).click()


def test_a_childs_account_opens_only_once_the_guardian_consents_through_the_mailed_link(
    live_server, settings, browser: Browser, smtp: SMTPServer, contexts: list[BrowserContext]
) -> None:
    settings.PIWARDEN_SITE_URL = live_server.url  # the e-mailed links lead to the served site
    base = str(live_server.url)
    child = browser.new_context(locale="zh-CN")
    child.add_init_script(CSP_PROBE)
    contexts.append(child)
    page = child.new_page()
    page.goto(f"{base}/account/sign-up/")
    page.fill("[name=email]", CHILD)
    page.fill("[name=date_of_birth]", "2016-03-01")
    page.fill("[name=guardian_email]", GUARDIAN)
    page.fill("[name=password]", PASSWORD)
    page.fill("[name=captcha_1]", "PASSED")  # CAPTCHA test mode
    page.check("[name=accept]")
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url("**/account/sign-up/sent/")
    expect(page.locator("main")).to_contain_text("监护人")
    run_worker()

    # Before the guardian acts: nothing of the child, and signing in is refused as for a stranger.
    assert not Person.objects.filter(email_index=email_index(CHILD)).exists()
    assert not Account.objects.exists()
    assert smtp.collector.to(CHILD) == []
    sign_in(child, base)
    expect(child.pages[-1].locator(".field-error, .errorlist, .alert").first).to_be_visible()
    assert "/account/sign-in/" in child.pages[-1].url

    # The guardian, in a browser of their own, answers the link e-mailed to them.
    guardian = browser.new_context(locale="zh-CN", java_script_enabled=False)
    contexts.append(guardian)
    answer = guardian.new_page()
    answer.goto(link_from(smtp, GUARDIAN, "/guardian/"))
    expect(answer.locator("h1")).to_have_text("监护人同意")
    answer.locator("input[name=separate_consent]").check()
    answer.get_by_role("button", name="我同意").click()
    expect(answer.locator("h1")).to_have_text("您的同意已记录")
    account = Account.objects.get()
    assert account.needs_guardian
    assert account.guardian_consented_at is not None

    # Only now is the child's confirmation e-mailed; once confirmed, the child signs in.
    run_worker()
    page.goto(link_from(smtp, CHILD, "/account/verify/"))
    page.get_by_role("button", name=WORDS["zh"]["confirm"]).click()
    expect(page.locator("h1")).to_have_text(WORDS["zh"]["confirmed"])
    account.refresh_from_db()
    assert account.state == AccountState.ACTIVE
    sign_in(child, base)
    child.pages[-1].wait_for_url(f"{base}/account/")
    expect(child.pages[-1].locator("[data-account-email]")).to_have_text(CHILD)
    assert child.pages[-1].evaluate("window.__cspViolations") == []
