"""Browsing and download history through a real visitor account in Chromium (issue 9 §3 to §5 tests).

A person opens an account (sign up, the link from the confirmation e-mail a real SMTP server
received, sign in), makes a cookie choice in the banner, browses and downloads a resource; what is
then stored about them, per person, is read from the database itself:

- refusing everything (or sending Global Privacy Control) leaves no page view, and refusing
  functional cookies no download, even once the waiting page views are written;
- allowing analytics and functional cookies puts both histories on the account page.

The account page with both histories is shot at desktop and phone widths (PIWARDEN_SHOTS_DIR).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, BrowserContext, Page, expect

from piwarden.accounts.models import Account
from piwarden.consent.models import CookieConsent
from piwarden.downloads import browsing
from piwarden.downloads.models import DownloadRecord, PageView
from piwarden.policy.declaration import load_declaration
from piwarden.vault.blind import email_index
from tests.accounts.in_browser import WORDS, open_account
from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import CSP_PROBE
from tests.downloads.conftest import PDF, publish
from tests.smtp import SMTPServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BROWSED = ("/contact/", "/privacy/", "/downloads/")


def cookie_names(context: BrowserContext) -> set[str]:
    return {c["name"] for c in context.cookies()}


def non_essential(context: BrowserContext) -> set[str]:
    essential = {c.name for c in load_declaration().cookies if c.category == "essential"}
    return cookie_names(context) - essential


def first_visit(page: Page, base: str) -> None:
    """The home page before any choice: the banner, nothing ticked, not a single cookie."""
    page.goto(f"{base}/")
    expect(page.locator("#cookie-banner")).to_be_visible()
    for name in ("functional", "analytics"):
        expect(page.locator(f"#cookie-banner input[name={name}]")).not_to_be_checked()
    assert cookie_names(page.context) == set()


def browse_and_download(page: Page, base: str, title: str) -> None:
    for path in BROWSED:
        page.goto(f"{base}{path}")
        expect(page.locator("h1").first).to_be_visible()
    with page.expect_download() as started:
        page.locator("li.download", has_text=title).get_by_role("link").click()
    assert started.value.path().read_bytes() == PDF


def rows_of(email: str) -> tuple[list[str], int]:
    """The person's page views (after writing the waiting ones, as the account page does) and downloads."""
    browsing.flush()
    person_id = Account.objects.get(email_index=email_index(email)).person_id
    pages = list(PageView.objects.filter(person_id=person_id).values_list("path", flat=True))
    return pages, DownloadRecord.objects.filter(person_id=person_id).count()


@pytest.fixture
def resource(admin: User) -> None:
    publish(admin)


@pytest.fixture
def site(live_server, settings, resource, monkeypatch: pytest.MonkeyPatch) -> str:  # the resource is on the page
    settings.PIWARDEN_SITE_URL = live_server.url  # the e-mailed link leads to the served site
    # Page views wait in memory until the test (rows_of) or the account page writes them: the served
    # site's own flush, due after 5 s on a loaded machine, would write them in its thread while the
    # test reads the table.
    monkeypatch.setattr(browsing, "MAX_WAIT_SECONDS", 3600.0)
    return str(live_server.url)


@pytest.fixture
def visit(browser: Browser) -> Iterator[Callable[..., Page]]:
    """A page in a fresh browser of a person speaking ``language``, CSP violations collected."""
    contexts: list[BrowserContext] = []

    def _visit(language: str, **options: Any) -> Page:
        context = browser.new_context(locale=WORDS[language]["locale"], accept_downloads=True, **options)
        context.add_init_script(CSP_PROBE)
        contexts.append(context)
        return context.new_page()

    yield _visit
    for context in contexts:
        context.close()


def choose(page: Page, button: str) -> CookieConsent:
    """Click one of the banner's buttons; the banner closes and the choice is in the ledger."""
    banner = page.locator("#cookie-banner")
    banner.get_by_role("button", name=button).click()
    expect(banner).to_have_count(0)
    return CookieConsent.objects.get()


def account_page_shows(page: Page, base: str, *, downloads: int, views: int) -> None:
    page.goto(f"{base}/account/")
    expect(page.locator("#download-history li")).to_have_count(downloads)
    expect(page.locator("#browsing-history li")).to_have_count(views)
    expect(page.locator("#cookie-banner")).to_have_count(0)  # the choice holds on the account's pages
    assert page.evaluate("window.__cspViolations") == []


@pytest.mark.duty("CON-02")
@pytest.mark.duty("CON-05")
def test_reject_all_then_browse_and_download_stores_nothing_per_person(
    site: str, visit: Callable[..., Page], smtp: SMTPServer
) -> None:
    words = WORDS["zh"]
    page = visit("zh")
    first_visit(page, site)
    record = choose(page, words["reject_all"])
    assert (record.action, record.functional, record.analytics) == ("reject_all", False, False)

    email = open_account(page, site, smtp, words)
    browse_and_download(page, site, words["title"])
    assert rows_of(email) == ([], 0)
    assert non_essential(page.context) == set()
    account_page_shows(page, site, downloads=0, views=0)
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "account-no-history-zh", 390)


@pytest.mark.duty("CON-02")
@pytest.mark.parametrize("language", ["zh", "en"])
def test_allowing_analytics_and_functional_puts_both_histories_on_the_account_page(
    site: str, visit: Callable[..., Page], smtp: SMTPServer, language: str
) -> None:
    words = WORDS[language]
    base = f"{site}{words['prefix']}"
    page = visit(language, viewport={"width": 1280, "height": 900})
    first_visit(page, base)
    for category in ("functional", "analytics"):
        page.locator(f"#cookie-banner input[name={category}]").check()
    record = choose(page, words["save"])
    assert (record.action, record.functional, record.analytics) == ("choose", True, True)

    email = open_account(page, base, smtp, words)
    browse_and_download(page, base, words["title"])
    pages, downloads = rows_of(email)
    browsed = [f"{words['prefix']}{path}" for path in BROWSED]
    assert set(browsed) <= set(pages)
    assert downloads == 1

    account_page_shows(page, base, downloads=1, views=len(pages))
    expect(page.locator("#download-history li")).to_contain_text(words["title"])
    for path in browsed:
        expect(page.locator("#browsing-history li", has_text=path)).not_to_have_count(0)
    shoot(page, f"account-history-{language}", 1280)
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, f"account-history-{language}", 390)


@pytest.mark.duty("CON-05")
@pytest.mark.duty("INT-05")
def test_global_privacy_control_refuses_analytics_for_an_account_holder(
    site: str, visit: Callable[..., Page], smtp: SMTPServer
) -> None:
    words = WORDS["zh"]
    page = visit("zh", extra_http_headers={"Sec-GPC": "1"})
    first_visit(page, site)
    expect(page.locator("#cookie-banner input[name=analytics]")).to_be_disabled()
    record = choose(page, words["accept_all"])
    assert (record.functional, record.analytics, record.gpc) == (True, False, True)

    email = open_account(page, site, smtp, words)
    browse_and_download(page, site, words["title"])
    assert rows_of(email) == ([], 1)  # the download under functional; no page view without analytics
    account_page_shows(page, site, downloads=1, views=0)
