"""The public pages: reachable, in the right language, self-contained, and telling the truth.

Every page answers 200 in both languages, declares its language, sends the security
headers, loads nothing from another origin, links the privacy policy from its footer
(NOT-03) and shows the hotline and e-mail (SEC-11).  The privacy page shows the
tables generated from ``policy/declaration.toml`` (NOT-01, NOT-02), and no page sets
a cookie the declaration does not list as essential (CON-05).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from piwarden.inquiries.models import FIELD_LABELS, PERSONAL_FIELDS, Inquiry
from tests.conftest import consultation_data

pytestmark = pytest.mark.django_db

PAGES = {
    # url: (language, the same page in the other language, url name)
    "/": ("zh-hans", "/en/", "home"),
    "/privacy/": ("zh-hans", "/en/privacy/", "privacy"),
    "/contact/": ("zh-hans", "/en/contact/", "contact"),
    "/consultation/": ("zh-hans", "/en/consultation/", "consultation"),
    "/en/": ("en", "/", "home"),
    "/en/privacy/": ("en", "/privacy/", "privacy"),
    "/en/contact/": ("en", "/contact/", "contact"),
    "/en/consultation/": ("en", "/consultation/", "consultation"),
}
HTML_LANG = {"zh-hans": "zh-Hans", "en": "en"}
URL_ATTRIBUTES = {"href", "src", "action", "srcset", "poster", "data", "formaction", "cite", "background"}


def declaration() -> dict[str, Any]:
    """The declaration as its file says, read independently of the loader under test."""
    with (settings.POLICY_DIR / "declaration.toml").open("rb") as f:
        return tomllib.load(f)


def localized(value: dict[str, str], language: str) -> str:
    return value["en" if language == "en" else "zh-hans"]


# --- reading a page ------------------------------------------------------------------


@dataclass
class Table:
    caption: str = ""
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Page:
    html_lang: str | None = None
    urls: list[tuple[str, str, str]] = field(default_factory=list)  # tag, attribute, value
    footer_links: list[str] = field(default_factory=list)
    footer_text: str = ""
    language_links: dict[str, str] = field(default_factory=dict)  # hreflang -> href
    tables: list[Table] = field(default_factory=list)
    strong: list[str] = field(default_factory=list)
    head_meta: str = ""
    text: str = ""


class _Reader(HTMLParser):
    VOID = frozenset({"input", "img", "br", "hr", "meta", "link", "source", "wbr", "col", "area", "base"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._open: list[tuple[str, set[str]]] = []  # tag, classes
        self._cell: list[str] | None = None
        self._in_caption = False

    def _inside(self, tag: str = "", css_class: str = "") -> bool:
        return any((not tag or t == tag) and (not css_class or css_class in c) for t, c in self._open)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        classes = set(attributes.get("class", "").split())
        if tag == "html":
            self.page.html_lang = attributes.get("lang")
        for name, value in attributes.items():
            if name in URL_ATTRIBUTES or (name == "content" and "url=" in value.lower()):
                self.page.urls.append((tag, name, value))
        if tag == "a" and self._inside("footer"):
            self.page.footer_links.append(attributes.get("href", ""))
        if tag == "a" and self._inside("nav", "lang-switch"):
            self.page.language_links[attributes.get("hreflang", "")] = attributes.get("href", "")
        if tag == "table":
            self.page.tables.append(Table())
        elif tag == "tr" and self.page.tables:
            self.page.tables[-1].rows.append([])
        elif tag in {"td", "th"}:
            self._cell = []
        elif tag == "caption":
            self._in_caption = True
        if tag == "strong":
            self.page.strong.append("")
        if tag not in self.VOID:
            self._open.append((tag, classes))

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"} and self._cell is not None and self.page.tables:
            self.page.tables[-1].rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "caption":
            self._in_caption = False
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        self.page.text += data
        if self._inside("footer"):
            self.page.footer_text += data
        if self._cell is not None:
            self._cell.append(data)
        if self._in_caption:
            self.page.tables[-1].caption += data
        if self._inside("strong"):
            self.page.strong[-1] += data
        if self._inside("p", "meta"):
            self.page.head_meta += data


def read(response: Any) -> Page:
    reader = _Reader()
    reader.feed(response.content.decode())
    return reader.page


def table_by_caption(page: Page, caption: str) -> Table:
    matches = [t for t in page.tables if " ".join(t.caption.split()) == caption]
    assert len(matches) == 1, [t.caption for t in page.tables]
    return matches[0]


# --- every page ----------------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
def test_every_page_answers_in_its_language(client, url):
    language, _other, _name = PAGES[url]
    response = client.get(url)
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Language"] == language
    assert read(response).html_lang == HTML_LANG[language]


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize("url", PAGES)
def test_every_page_sends_the_security_headers(client, url):
    response = client.get(url)
    directives = {}
    for directive in response["Content-Security-Policy"].split(";"):
        name, *sources = directive.split()
        directives[name] = sources
    assert directives["default-src"] == ["'none'"]
    for name, sources in directives.items():
        for source in sources:
            # Only keywords ('self', 'none', a nonce): no host, scheme or wildcard source.
            assert source.startswith("'"), f"{name} allows {source}"
            assert source.endswith("'"), f"{name} allows {source}"
    assert directives["frame-ancestors"] == ["'none'"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] in {"same-origin", "no-referrer", "strict-origin"}
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.parametrize("url", PAGES)
def test_no_page_loads_or_links_anything_from_another_origin(client, url):
    page = read(client.get(url))
    assert page.urls
    for tag, attribute, value in page.urls:
        parts = urlsplit(value.strip())
        if parts.scheme in {"mailto", "tel"}:
            continue
        assert parts.scheme == "", f"<{tag} {attribute}={value!r}>"
        assert parts.netloc == "", f"<{tag} {attribute}={value!r}>"  # no protocol-relative //host either
        assert value.startswith(("/", "#")), f"<{tag} {attribute}={value!r}>"


@pytest.mark.duty("NOT-03")
@pytest.mark.parametrize("url", PAGES)
def test_every_page_links_the_privacy_policy_from_its_footer(client, url):
    language, _other, _name = PAGES[url]
    page = read(client.get(url))
    privacy = "/en/privacy/" if language == "en" else "/privacy/"
    assert privacy in page.footer_links
    assert client.get(privacy).status_code == HTTPStatus.OK  # one click away


@pytest.mark.duty("SEC-11")
@pytest.mark.parametrize("url", PAGES)
def test_every_page_shows_the_hotline_and_email(client, url):
    controller = declaration()["controller"]
    page = read(client.get(url))
    assert controller["hotline"] == "95015"
    assert controller["hotline"] in page.footer_text
    assert controller["email"] in page.footer_text
    assert f"tel:{controller['hotline']}" in page.footer_links
    assert f"mailto:{controller['email']}" in page.footer_links


@pytest.mark.parametrize("url", PAGES)
def test_the_language_switch_leads_to_the_same_page_in_the_other_language(client, url):
    language, other, name = PAGES[url]
    page = read(client.get(url))
    zh, en = (other, url) if language == "en" else (url, other)
    assert page.language_links == {"zh-Hans": zh, "en": en}
    switched = client.get(other)
    assert switched.status_code == HTTPStatus.OK
    assert switched.resolver_match.url_name == name
    assert switched["Content-Language"] == PAGES[other][0] != language


# --- the privacy page ------------------------------------------------------------------


COLLECTION_CAPTION = {
    "en": "Personal information we collect and how we handle it",
    "zh-hans": "我们收集的个人信息及处理方式",
}
COOKIES_CAPTION = {"en": "Cookies used on this website", "zh-hans": "本网站使用的 Cookie"}
RECIPIENTS_CAPTION = {"en": "Recipients of personal information", "zh-hans": "个人信息接收方"}
DAYS = {"en": "{} days", "zh-hans": "{} 天"}
ONE_DAY = {"en": "1 day", "zh-hans": "1 天"}


@pytest.mark.duty("NOT-01")
@pytest.mark.parametrize("url", ["/privacy/", "/en/privacy/"])
def test_the_privacy_page_shows_its_version_and_effective_date(client, url):
    policy = declaration()["policy"]
    page = read(client.get(url))
    assert policy["version"] in page.head_meta
    assert policy["effective"].isoformat() in page.head_meta


@pytest.mark.duty("NOT-02")
@pytest.mark.parametrize("url", ["/privacy/", "/en/privacy/"])
def test_the_privacy_page_lists_every_category_with_its_retention(client, url):
    language = PAGES[url][0]
    page = read(client.get(url))
    rows = {row[0]: row for row in table_by_caption(page, COLLECTION_CAPTION[language]).rows[1:]}
    categories = declaration()["categories"]
    assert len(rows) == len(categories)
    for category in categories:
        row = rows[localized(category["name"], language)]
        days = category["retention_days"]
        period = ONE_DAY[language] if days == 1 else DAYS[language].format(days)
        retention = next(cell for cell in row if period in cell)
        assert localized(category["retention_from"], language) in retention
        assert localized(category["description"], language) in row


@pytest.mark.duty("SHR-01")
@pytest.mark.parametrize("url", ["/privacy/", "/en/privacy/"])
def test_the_privacy_page_names_every_affiliate(client, url):
    language = PAGES[url][0]
    page = read(client.get(url))
    recipients = declaration()["recipients"]
    assert recipients
    named = [row[0] for row in table_by_caption(page, RECIPIENTS_CAPTION[language]).rows[1:]]
    assert named == [localized(r["name"], language) for r in recipients]


@pytest.mark.duty("NOT-06")
@pytest.mark.parametrize("url", ["/privacy/", "/en/privacy/"])
def test_the_privacy_page_lists_every_cookie(client, url):
    language = PAGES[url][0]
    page = read(client.get(url))
    rows = table_by_caption(page, COOKIES_CAPTION[language]).rows[1:]
    cookies = declaration()["cookies"]
    assert [row[0] for row in rows] == [c["name"] for c in cookies]
    for row, cookie in zip(rows, cookies, strict=True):
        assert localized(cookie["purpose"], language) in row


@pytest.mark.duty("NOT-01")
@pytest.mark.parametrize("url", ["/privacy/", "/en/privacy/"])
def test_the_privacy_page_marks_significant_terms_in_bold(client, url):
    page = read(client.get(url))
    assert len(page.strong) >= 10
    consent_is_not_pre_ticked = {
        "/en/privacy/": "The consent checkbox on the consultation form is not ticked in advance.",
        "/privacy/": "咨询表单上的同意勾选框默认不勾选。",
    }[url]
    assert any(consent_is_not_pre_ticked in " ".join(s.split()) for s in page.strong)


# --- cookies -------------------------------------------------------------------------


def essential_cookies() -> set[str]:
    return {c["name"] for c in declaration()["cookies"] if c["category"] == "essential"}


EXPECTED_COOKIES = {
    "/": set(),
    "/privacy/": set(),
    "/contact/": set(),
    "/consultation/": {"csrftoken"},  # the form's CSRF protection, essential
}


@pytest.mark.duty("CON-05")
@pytest.mark.parametrize("url", PAGES)
def test_a_visitor_gets_only_the_cookies_each_page_needs(url):
    client = Client()  # a first visit: no cookie from another test
    response = client.get(url)
    set_here = set(response.cookies)
    assert set_here == EXPECTED_COOKIES[url.removeprefix("/en")]
    assert set_here <= essential_cookies()
    for name in set_here:
        morsel = response.cookies[name]
        assert morsel["httponly"]
        assert morsel["samesite"] in {"Strict", "Lax"}


@pytest.mark.duty("CON-05")
def test_a_whole_consultation_sets_no_cookie_beyond_csrf():
    """GET the form, its CAPTCHA image, POST it with CSRF enforced, read the receipt."""
    client = Client(enforce_csrf_checks=True)
    seen: set[str] = set()

    def visit(response: Any) -> Any:
        seen.update(response.cookies)
        return response

    form = visit(client.get("/en/consultation/"))
    body = form.content.decode()
    token = body.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    image = next(value for tag, attr, value in read(form).urls if tag == "img" and value.startswith("/captcha/"))
    assert visit(client.get(image)).status_code == HTTPStatus.OK
    posted = visit(client.post("/en/consultation/", {**consultation_data(), "csrfmiddlewaretoken": token}))
    assert posted.status_code == HTTPStatus.FOUND
    assert visit(client.get(posted["Location"])).status_code == HTTPStatus.OK
    assert seen == {"csrftoken"}
    assert "sessionid" not in client.cookies  # the staff session is never set for visitors


@pytest.mark.django_db
@pytest.mark.parametrize(("prefix", "expected"), [("", "此表单已过期"), ("/en", "This form has expired")])
def test_a_refused_csrf_token_is_explained_in_the_page_language(prefix, expected):
    client = Client(enforce_csrf_checks=True)
    response = client.post(f"{prefix}/consultation/", {"name": "x"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert expected in response.content.decode()
    assert not Inquiry.objects.exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "/consultation/",
            "我们只收集本表单中的信息：姓名、联系电话、电子邮箱、公司名称、所属行业、职务和国家/地区，以及您关注的产品。",
        ),
        (
            "/en/consultation/",
            "We collect only the details in this form: name, contact number, e-mail, company, industry, position "
            "and country / region, plus the product you are interested in.",
        ),
    ],
)
def test_the_form_page_names_the_fields_it_collects_as_the_model_labels_them(client, url, expected):
    page = " ".join(client.get(url).content.decode().split())
    assert expected in page
    for name in PERSONAL_FIELDS:  # every field the model declares personal, none left out
        with translation.override("en" if url.startswith("/en/") else "zh-hans"):
            label = str(FIELD_LABELS[name])
        assert (label[:1].lower() + label[1:]) in page


@pytest.mark.duty("RGT-08")
@pytest.mark.parametrize(("url", "portal"), [("/privacy/", "/rights/"), ("/en/privacy/", "/en/rights/")])
def test_the_privacy_page_sends_a_person_to_the_rights_portal_in_its_language(client, url, portal):
    page = client.get(url).content.decode()
    assert f'href="{portal}"' in page
    form = client.get(portal)
    assert form.status_code == 200
    assert b'name="email"' in form.content
