"""The cookie banner and the cookies page over HTTP: choices in the ledger, GPC, bad input, re-asking."""

from __future__ import annotations

import gzip
import html
from collections.abc import Callable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client
from django.test.signals import template_rendered

from piwarden.audit.models import AuditEvent, EventType
from piwarden.consent.cookies import COOKIE_NAME
from piwarden.consent.models import CookieAction, CookieConsent
from piwarden.policy.declaration import load_declaration
from piwarden.site.pagecache import forget_pages
from tests.policy.test_declaration import edited

pytestmark = pytest.mark.django_db

BANNER = 'id="cookie-banner"'
SAME_SITE = {"HTTP_SEC_FETCH_SITE": "same-origin"}


@pytest.fixture(autouse=True)
def _empty_store() -> Iterator[None]:
    forget_pages()
    yield
    forget_pages()


@pytest.fixture
def rendered_count() -> Iterator[Callable[[], int]]:
    """How many pages were rendered through the site's base template while the test ran."""
    names: list[str] = []

    def record(sender: Any, template: Any, **kwargs: Any) -> None:
        names.append(str(template.name))

    template_rendered.connect(record)
    yield lambda: names.count("base.html")
    template_rendered.disconnect(record)


def choose(client: Client, url: str = "/cookies/", **data: str) -> object:
    return client.post(url, data, **SAME_SITE)


@pytest.mark.duty("CON-02")
@pytest.mark.parametrize("url", ["/", "/en/", "/privacy/", "/en/contact/", "/consultation/"])
def test_a_first_visit_shows_the_banner_with_nothing_ticked_and_sets_no_cookie(url):
    client = Client()
    response = client.get(url)
    body = response.content.decode()
    assert BANNER in body
    banner = body.split(BANNER, 1)[1].split("</section>", 1)[0]
    assert 'name="functional" value="on">' in banner  # not ticked
    assert 'name="analytics" value="on">' in banner
    for action in ("accept_all", "reject_all", "choose"):  # three buttons, one look
        assert f'<button class="btn btn-secondary" type="submit" name="action" value="{action}">' in banner
    assert COOKIE_NAME not in response.cookies


@pytest.mark.duty("CON-02")
@pytest.mark.parametrize(
    ("data", "functional", "analytics"),
    [
        ({"action": "accept_all"}, True, True),
        ({"action": "reject_all", "functional": "on", "analytics": "on"}, False, False),  # the button decides
        ({"action": "choose", "functional": "on"}, True, False),
        ({"action": "choose", "analytics": "on"}, False, True),
        ({"action": "choose"}, False, False),
    ],
)
def test_each_choice_is_recorded_with_the_cookie_declaration_version(data, functional, analytics):
    client = Client()
    response = choose(client, next="/en/privacy/", **data)
    assert response.status_code == HTTPStatus.SEE_OTHER
    assert response["Location"] == "/en/privacy/"
    record = CookieConsent.objects.get()
    assert (record.action, record.functional, record.analytics, record.gpc) == (
        data["action"],
        functional,
        analytics,
        False,
    )
    declaration = load_declaration()
    assert record.cookies_version == declaration.cookies_version
    assert record.policy_version == declaration.version
    assert record.channel == "banner"
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 365 * 24 * 3600
    assert record.consent_id in cookie.value  # the cookie points at its proof, and holds nothing else of note
    event = AuditEvent.objects.get(event_type=EventType.COOKIE_CHOICE)
    assert event.person_id is None
    # The banner is gone, and the choice shows on the cookies page.
    assert BANNER not in client.get("/en/privacy/").content.decode()
    page = client.get("/en/cookies/").content.decode()
    assert f'<strong data-state="functional">{"allowed" if functional else "refused"}</strong>' in page
    assert f'<strong data-state="analytics">{"allowed" if analytics else "refused"}</strong>' in page


@pytest.mark.duty("CON-04")
def test_a_later_choice_keeps_the_consent_id_and_is_appended():
    client = Client()
    choose(client, action="accept_all")
    choose(client, action="reject_all")
    first, second = CookieConsent.objects.order_by("given_at", "id")
    assert first.consent_id == second.consent_id
    assert (first.analytics, second.analytics) == (True, False)
    assert (first.channel, second.channel) == ("cookies_page", "cookies_page")


@pytest.mark.duty("CON-05")
@pytest.mark.duty("CON-02")
@pytest.mark.duty("INT-05")
def test_global_privacy_control_refuses_analytics_and_is_recorded():
    client = Client(headers={"Sec-GPC": "1"})
    page = client.get("/").content.decode()
    assert "全球隐私控制" in page
    assert 'name="analytics" value="on" disabled>' in page
    response = choose(client, action="accept_all")
    assert response.status_code == HTTPStatus.SEE_OTHER
    record = CookieConsent.objects.get()
    assert (record.functional, record.analytics, record.gpc) == (True, False, True)
    assert response.cookies[COOKIE_NAME].value.split(":")[0].endswith(".10")
    assert '<strong data-state="analytics">已拒绝</strong>' in client.get("/cookies/").content.decode()


@pytest.mark.duty("CON-05")
def test_a_refusal_is_not_asked_about_again():
    client = Client()
    choose(client, action="reject_all")
    for url in ("/", "/privacy/", "/en/contact/", "/consultation/"):
        assert BANNER not in client.get(url).content.decode()


@pytest.mark.duty("CON-03")
def test_a_changed_cookie_declaration_asks_again(declared):
    client = Client()
    choose(client, action="accept_all")
    assert BANNER not in client.get("/").content.decode()
    before = load_declaration().cookies_version
    declared(
        edited(('lifetime = { zh-hans = "30 分钟，或关闭浏览器时"', 'lifetime = { zh-hans = "30 分钟或关闭浏览器时"'))
    )
    assert load_declaration().cookies_version != before
    assert BANNER in client.get("/").content.decode()
    page = client.get("/en/cookies/").content.decode()
    assert "The list of cookies has changed since you chose" in page
    assert 'name="analytics" value="on">' in page  # no longer counted as allowed


@pytest.mark.duty("CON-03")
def test_a_change_elsewhere_in_the_declaration_does_not_ask_again(declared):
    client = Client()
    choose(client, action="reject_all")
    declared(edited(('hotline = "95015"', 'hotline = "95016"')))
    assert BANNER not in client.get("/").content.decode()


BAD = {
    "no button": {"functional": "on"},
    "unknown button": {"action": "accept_some"},
    "a checkbox with another value": {"action": "choose", "functional": "yes"},
    "a next page on another site": {"action": "accept_all", "next": "https://evil.example/"},
    "a next page starting with two slashes": {"action": "accept_all", "next": "//evil.example/"},
}


@pytest.mark.duty("CON-02")
@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/cookies/", "无法识别您提交的选择，我们未作任何更改。请重新选择。"),
        ("/en/cookies/", "Your choice could not be read, so nothing was changed. Please choose again."),
    ],
)
def test_bad_input_is_refused_in_the_visitors_language_and_changes_nothing(case, url, message):
    client = Client()
    choose(client, url, action="reject_all")
    before = CookieConsent.objects.count(), client.cookies[COOKIE_NAME].value
    response = choose(client, url, **BAD[case])
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.content.decode()
    assert COOKIE_NAME not in response.cookies
    assert (CookieConsent.objects.count(), client.cookies[COOKIE_NAME].value) == before


@pytest.mark.duty("CON-02")
@pytest.mark.parametrize("headers", [{"HTTP_SEC_FETCH_SITE": "cross-site"}, {"HTTP_ORIGIN": "https://evil.example"}])
def test_a_choice_forged_by_another_site_is_refused(headers):
    client = Client()
    for url in ("/en/cookies/", "/en/cookies/delete/"):
        response = client.post(url, {"action": "accept_all", "confirm": "1"}, **headers)
        assert response.status_code == HTTPStatus.FORBIDDEN
        assert "did not come from this site's own page" in html.unescape(response.content.decode())
        assert not response.cookies
    assert not CookieConsent.objects.exists()


@pytest.mark.duty("CON-04")
@pytest.mark.duty("CON-05")
def test_deleting_the_sites_cookies_expires_every_declared_cookie_and_records_the_end():
    client = Client()
    choose(client, action="accept_all")
    response = client.post("/en/cookies/delete/", {"confirm": "1"}, **SAME_SITE)
    assert response.status_code == HTTPStatus.SEE_OTHER
    declared = {c.name for c in load_declaration().cookies}
    assert set(response.cookies) == declared
    assert all(response.cookies[name]["max-age"] == 0 for name in declared)
    latest = CookieConsent.objects.order_by("-given_at", "-id").first()
    assert latest is not None
    assert (latest.action, latest.functional, latest.analytics) == (CookieAction.CLEARED, False, False)
    page = client.get(response["Location"]).content.decode()
    assert "Your cookie settings are gone with them: please choose them again." in html.unescape(page)
    assert BANNER not in page  # the cookies page is the form itself
    assert BANNER in client.get("/en/").content.decode()


@pytest.mark.duty("CON-04")
def test_the_delete_form_refuses_anything_but_its_own_field():
    client = Client()
    choose(client, action="accept_all")
    response = client.post("/cookies/delete/", {"confirm": "1", "extra": "x"}, **SAME_SITE)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "无法识别您的请求，我们未删除任何内容。" in response.content.decode()
    assert not response.cookies


@pytest.mark.duty("NOT-06")
@pytest.mark.parametrize(("url", "lifetime"), [("/cookies/", "1 年"), ("/en/cookies/", "1 year")])
def test_the_cookies_page_lists_every_declared_cookie_by_category(client, url, lifetime):
    page = client.get(url).content.decode()
    for cookie in load_declaration().cookies:
        assert f"<code>{cookie.name}</code>" in page
    essential = page.split('data-category="essential"', 1)[1].split("</table>", 1)[0]
    assert "<code>piwarden_consent</code>" in essential
    assert lifetime in essential
    assert 'action="' + ("/en" if url.startswith("/en") else "") + '/cookies/delete/"' in page


def test_the_script_answers_without_a_page():
    client = Client()
    response = client.post(
        "/cookies/", {"action": "reject_all", "next": "/"}, headers={"Accept": "application/json"}, **SAME_SITE
    )
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert COOKIE_NAME in response.cookies
    assert CookieConsent.objects.get().channel == "script"


def test_the_banner_script_is_a_small_static_file():
    path = Path(settings.STATIC_ROOT) / staticfiles_storage.stored_name("piwarden/cookies.js")
    size = len(gzip.compress(path.read_bytes(), compresslevel=9))
    assert size <= 3 * 1024, f"{size} bytes gzipped"
    assert "http" not in path.read_text()  # nothing from another origin


def test_the_cookie_declaration_drops_the_language_cookie_nothing_sets():
    names = {c.name for c in load_declaration().cookies}
    assert "piwarden_language" not in names
    assert {"csrftoken", "piwarden_consent"} <= names


@pytest.mark.parametrize("url", ["/", "/privacy/"])
def test_the_banner_keeps_public_pages_stored(url, rendered_count):
    """A first visit and a visitor who chose each get a stored body: rendered once per kind."""
    for _ in range(3):
        Client().get(url)
    chosen = Client()
    choose(chosen, action="reject_all")
    for _ in range(3):
        chosen.get(url)
    assert rendered_count() == 2


@pytest.mark.duty("CON-02")
def test_a_tampered_choice_cookie_counts_as_no_choice():
    client = Client()
    choose(client, action="reject_all")
    value = client.cookies[COOKIE_NAME].value
    client.cookies[COOKIE_NAME] = value.replace(".00:", ".11:", 1)  # allow everything, keep the signature
    assert ".11:" in client.cookies[COOKIE_NAME].value
    assert BANNER in client.get("/").content.decode()
    page = client.get("/en/cookies/").content.decode()
    assert "You have not chosen yet" in page


def test_choices_beyond_the_rate_are_refused_and_not_recorded(settings):
    settings.PIWARDEN_COOKIE_CHOICE_RATE = "2/m"
    client = Client()
    for _ in range(2):
        assert choose(client, "/en/cookies/", action="reject_all").status_code == HTTPStatus.SEE_OTHER
    refused = choose(client, "/en/cookies/", action="accept_all")
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Too many requests came from your network in a short time" in refused.content.decode()
    assert COOKIE_NAME not in refused.cookies
    assert list(CookieConsent.objects.values_list("analytics", flat=True)) == [False, False]
    assert client.get("/en/cookies/").status_code == HTTPStatus.OK  # reading the page is not counted
