"""Pages rendered once per process, language and path (piwarden.site.pagecache), forms with their blanks filled in.

Whether a page was rendered is observed through Django's ``template_rendered`` signal, which the
test environment sends for every template; the bodies and headers are compared as a browser
receives them.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from captcha.models import CaptchaStore
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template import engines
from django.test import Client, RequestFactory
from django.test.signals import template_rendered
from django.utils.csp import LazyNonce

from piwarden.inquiries.models import Inquiry
from piwarden.policy.declaration import load_declaration
from piwarden.site.pagecache import FilledInPage, forget_pages, rendered_once
from tests.conftest import consultation_data, sign_in
from tests.policy.test_declaration import edited, policy_dir

pytestmark = pytest.mark.django_db

CACHED = ["/", "/privacy/", "/contact/", "/en/", "/en/privacy/", "/en/contact/"]


@pytest.fixture(autouse=True)
def _empty_store() -> Iterator[None]:
    forget_pages()
    yield
    forget_pages()


@pytest.fixture
def rendered() -> Iterator[list[str]]:
    """The names of the templates rendered while the test runs."""
    names: list[str] = []

    def record(sender: Any, template: Any, **kwargs: Any) -> None:
        names.append(str(template.name))

    template_rendered.connect(record)
    yield names
    template_rendered.disconnect(record)


@pytest.mark.parametrize("url", CACHED)
def test_a_public_page_is_rendered_once_then_served_from_the_store(
    client: Client, rendered: list[str], url: str
) -> None:
    first = client.get(url)
    assert rendered, "the first request renders the page"
    rendered.clear()
    second = client.get(url)
    assert rendered == []
    assert second.status_code == first.status_code == HTTPStatus.OK
    assert second.content == first.content


@pytest.mark.parametrize("url", CACHED)
def test_a_stored_page_keeps_every_header_the_middleware_adds(client: Client, url: str) -> None:
    first = client.get(url)
    second = client.get(url)
    for header in (
        "Content-Type",
        "Content-Language",
        "Vary",
        "Content-Security-Policy",
        "X-Frame-Options",
        "Permissions-Policy",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
        "X-Content-Type-Options",
    ):
        assert second.headers.get(header) == first.headers.get(header), header
    assert second.headers["Content-Language"] == ("en" if url.startswith("/en/") else "zh-hans")


def test_head_is_answered_from_the_store_too(client: Client) -> None:
    client.get("/privacy/")
    answer = client.head("/privacy/")
    assert answer.status_code == HTTPStatus.OK
    assert answer["Content-Type"].startswith("text/html")


def test_a_signed_in_staff_member_gets_the_same_bytes_as_a_visitor(alice: User) -> None:
    """The contract the decorator cannot check itself: nothing on these pages depends on the user."""
    visitor, staff = Client(), Client()
    assert sign_in(staff, alice).status_code == HTTPStatus.FOUND
    for url in CACHED:
        forget_pages()
        as_staff = staff.get(url).content  # rendered for the staff member, then stored
        assert visitor.get(url).content == as_staff, url
        forget_pages()
        assert visitor.get(url).content == as_staff, url  # rendered for the visitor


def test_a_query_string_is_rendered_every_time_and_not_stored(client: Client, rendered: list[str]) -> None:
    client.get("/contact/")
    rendered.clear()
    with_query = client.get("/contact/?from=newsletter")
    assert rendered, "a request with a query string renders"
    assert b"?from=newsletter" in with_query.content  # the language links keep it
    assert b"?from=newsletter" not in client.get("/contact/").content


def test_a_new_declaration_renders_the_pages_again(client: Client, settings: Any, tmp_path: Path) -> None:
    name = "奇安信科技集团股份有限公司"
    assert name.encode() in client.get("/").content
    settings.POLICY_DIR = policy_dir(tmp_path, edited((f'zh-hans = "{name}"', 'zh-hans = "示例网络安全有限公司"')))
    load_declaration.cache_clear()
    try:
        page = client.get("/").content
    finally:
        load_declaration.cache_clear()  # before pytest-django restores POLICY_DIR
    assert "示例网络安全有限公司".encode() in page
    assert name.encode() not in page


def test_nothing_is_stored_under_debug(client: Client, settings: Any, rendered: list[str]) -> None:
    settings.DEBUG = True
    client.get("/")
    rendered.clear()
    client.get("/")
    assert rendered


def test_an_unknown_page_is_still_404(client: Client) -> None:
    client.get("/")
    assert client.get("/no-such-page/").status_code == HTTPStatus.NOT_FOUND


# --- what makes a page request-dependent is never stored --------------------------------------


def _view(template: str) -> Any:
    compiled = engines["django"].from_string(template)

    @rendered_once
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse(compiled.render({}, request))

    return view


def test_a_page_that_shows_the_csrf_token_is_rendered_every_time() -> None:
    view = _view("<form>{% csrf_token %}</form>")
    factory = RequestFactory()
    first, second = view(factory.get("/form/")), view(factory.get("/form/"))
    assert b"csrfmiddlewaretoken" in first.content
    assert first.content != second.content


def test_a_page_that_shows_the_csrf_token_is_not_stored_when_the_cookie_was_renewed_already() -> None:
    # The middleware sets the flag before the view for a visitor whose cookie is missing or
    # malformed: the token the page then shows is still that visitor's own.
    view = _view("<form>{% csrf_token %}</form>")
    factory = RequestFactory()
    requests = [factory.get("/renewed/") for _ in range(2)]
    for request in requests:
        request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    first, second = (view(request) for request in requests)
    assert first.content != second.content
    assert all(request.META["CSRF_COOKIE_NEEDS_UPDATE"] for request in requests)  # the cookie is still sent


def test_a_page_that_uses_the_csp_nonce_is_rendered_every_time() -> None:
    view = _view("<script nonce='{{ csp_nonce }}'></script>")
    factory = RequestFactory()
    bodies = []
    for _ in range(2):
        request = factory.get("/script/")
        request._csp_nonce = LazyNonce()  # type: ignore[attr-defined]  # as ContentSecurityPolicyMiddleware does
        bodies.append(view(request).content)
    assert bodies[0] != bodies[1]


def test_an_answer_other_than_200_is_not_stored() -> None:
    calls: list[int] = []

    @rendered_once
    def gone(request: HttpRequest) -> HttpResponse:
        calls.append(1)
        return HttpResponse("gone", status=HTTPStatus.GONE)

    factory = RequestFactory()
    gone(factory.get("/gone/"))
    gone(factory.get("/gone/"))
    assert len(calls) == 2  # both requests reached the view


# --- FilledInPage: a form page stored once, each request's own values filled in ---------------

FORM_PAGE = """<form>{% csrf_token %}<input name="token" value="{{ token }}"><img src="/picture/{{ key }}/">
<input type="hidden" name="key" value="{{ key }}"></form>"""


@pytest.fixture
def form_page(settings: Any, tmp_path: Path) -> FilledInPage:
    (tmp_path / "fill.html").write_text(FORM_PAGE)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]

    def context(request: HttpRequest) -> dict[str, Any]:
        return {"token": uuid.uuid4(), "key": secrets.token_hex(20), "csrf_token": get_token(request)}

    def read(context: dict[str, Any]) -> dict[str, str]:
        return {"csrf": str(context["csrf_token"]), "token": str(context["token"]), "key": context["key"]}

    def fresh(request: HttpRequest) -> dict[str, str]:
        return {"csrf": get_token(request), "token": str(uuid.uuid4()), "key": secrets.token_hex(20)}

    return FilledInPage("fill.html", context=context, read=read, fresh=fresh)


def _fields(body: bytes) -> dict[str, str]:
    text = body.decode()
    found = {
        "csrf": re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text),
        "token": re.search(r'name="token" value="([^"]+)"', text),
        "key": re.search(r'name="key" value="([^"]+)"', text),
        "picture": re.search(r'src="/picture/([^"/]+)/"', text),
    }
    return {name: match.group(1) for name, match in found.items() if match is not None}


def test_a_form_page_is_rendered_once_and_filled_in_with_each_requests_values(
    form_page: FilledInPage, rendered: list[str]
) -> None:
    factory = RequestFactory()
    first = form_page(factory.get("/form/"))
    assert rendered == ["fill.html"]
    rendered.clear()
    second = form_page(factory.get("/form/"))
    assert rendered == []
    one, two = _fields(first.content), _fields(second.content)
    assert set(one) == set(two) == {"csrf", "token", "key", "picture"}
    assert two["key"] == two["picture"]  # a value shown twice is filled in twice
    assert all(one[name] != two[name] for name in one)
    filled_back = second.content.decode()
    for name in ("csrf", "token", "key"):
        filled_back = filled_back.replace(two[name], one[name])
    assert filled_back == first.content.decode()


def test_a_form_page_whose_values_do_not_match_is_rendered_in_full(
    form_page: FilledInPage, rendered: list[str]
) -> None:
    factory = RequestFactory()
    form_page(factory.get("/form/"))
    form_page.fresh = lambda request: {"csrf": get_token(request), "token": str(uuid.uuid4())}  # no key
    rendered.clear()
    page = form_page(factory.get("/form/"))
    assert rendered == ["fill.html"]
    assert _fields(page.content)["key"] == _fields(page.content)["picture"]


def test_a_value_that_would_need_escaping_is_never_filled_in(form_page: FilledInPage, rendered: list[str]) -> None:
    form_page.read = lambda context: {"token": str(context["token"]), "key": '"><b>' + context["key"]}
    factory = RequestFactory()
    form_page(factory.get("/form/"))
    rendered.clear()
    form_page(factory.get("/form/"))
    assert rendered == ["fill.html"]


def test_a_form_page_with_a_query_string_is_rendered_in_full(form_page: FilledInPage, rendered: list[str]) -> None:
    factory = RequestFactory()
    form_page(factory.get("/form/"))
    rendered.clear()
    form_page(factory.get("/form/?utm=x"))
    assert rendered == ["fill.html"]


# --- the consultation page itself ---------------------------------------------------------------


def test_the_consultation_form_is_rendered_once_and_each_visitor_gets_a_real_challenge_of_their_own(
    client: Client, rendered: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("captcha.conf.settings.CAPTCHA_TEST_MODE", False)
    pages = []
    for _visitor in range(3):
        visitor = Client(enforce_csrf_checks=True)
        response = visitor.get("/consultation/")
        assert response.status_code == HTTPStatus.OK
        pages.append((visitor, response.content.decode()))
    assert rendered.count("site/consultation.html") == 1  # the second and third were filled in

    def shown(page: str, name: str) -> str:
        match = re.search(rf'name="{name}" value="([^"]+)"', page)
        assert match is not None, name
        return match.group(1)

    for name in ("csrfmiddlewaretoken", "submission_token", "captcha_0"):
        assert len({shown(page, name) for _client, page in pages}) == len(pages), name
    for _client, page in pages:  # every picture is of its own stored challenge
        key = shown(page, "captcha_0")
        assert f"/captcha/image/{key}/" in page
        assert CaptchaStore.objects.filter(hashkey=key).exists()

    # The last visitor's filled-in page is a working form: its tokens and its challenge are accepted.
    visitor, page = pages[-1]
    key = shown(page, "captcha_0")
    answer = CaptchaStore.objects.get(hashkey=key).response
    body = consultation_data(
        csrfmiddlewaretoken=shown(page, "csrfmiddlewaretoken"),
        submission_token=shown(page, "submission_token"),
        captcha_0=key,
        captcha_1=answer,
    )
    response = visitor.post("/consultation/", body)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:500]
    assert Inquiry.objects.filter(submission_token=uuid.UUID(shown(page, "submission_token"))).exists()
