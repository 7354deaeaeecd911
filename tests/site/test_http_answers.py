"""What the site answers besides its pages: HEAD, Permissions-Policy, refusals, the CAPTCHA, the receipt.

* HEAD on every public page answers 200 (uptime checkers use it).
* Every response denies the browser features the site does not use (Permissions-Policy).
* 400, 413 and 414 are the site's own pages in the visitor's language, also behind gunicorn.
* The CAPTCHA's picture is described in the page's language, and a "new picture" button works
  without JavaScript and keeps what the visitor typed.
* The receipt tells the truth about the acknowledgement e-mail for the mail setting in use.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from http import HTTPStatus
from pathlib import Path

import pytest
from captcha.models import CaptchaStore
from django.conf import settings as django_settings

from piwarden.inquiries.models import Inquiry
from piwarden.site.limits import MAX_URL_LENGTH
from tests.conftest import consultation_data
from tests.site.test_bad_input import assert_nothing_stored, read_form_page

pytestmark = pytest.mark.django_db

PUBLIC_PAGES = [
    "/",
    "/privacy/",
    "/contact/",
    "/consultation/",
    "/en/",
    "/en/privacy/",
    "/en/contact/",
    "/en/consultation/",
]
# Everything a page could ask the browser for; the site uses none of it.
MUST_BE_DENIED = ("camera", "microphone", "geolocation", "payment", "usb", "serial", "bluetooth", "display-capture")


def received_url(client) -> str:
    response = client.post("/consultation/", consultation_data())
    assert response.status_code == HTTPStatus.FOUND
    return response["Location"]


# --- HEAD ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PUBLIC_PAGES)
def test_head_on_every_public_page_answers_200(client, url):
    response = client.head(url)
    assert response.status_code == HTTPStatus.OK
    assert response.content == b""


def test_head_on_the_receipt_answers_200(client):
    assert client.head(received_url(client)).status_code == HTTPStatus.OK


# --- Permissions-Policy ------------------------------------------------------------------


def denied_features(response) -> dict[str, str]:
    policy = {}
    for item in response["Permissions-Policy"].split(","):
        feature, _eq, allowlist = item.strip().partition("=")
        policy[feature] = allowlist
    return policy


@pytest.mark.parametrize(
    ("method", "url"),
    [
        *(("get", url) for url in PUBLIC_PAGES),
        ("get", "/static/piwarden/site.css"),
        ("get", "/no-such-page/"),
        ("post", "/en/consultation/"),
        ("put", "/en/consultation/"),
        ("get", "/backoffice/login/"),
    ],
)
def test_every_response_denies_every_browser_feature(client, method, url):
    response = getattr(client, method)(url)
    policy = denied_features(response)
    for feature in MUST_BE_DENIED:
        assert policy[feature] == "()", feature
    assert set(policy.values()) == {"()"}  # nothing is allowed to anyone, not even this origin


# --- 400, 413, 414: our pages, in the visitor's language ----------------------------------

PAGES = {
    HTTPStatus.BAD_REQUEST: {
        "en": "Your browser sent a request this site could not understand. Nothing was stored.",
        "zh-hans": "您的浏览器发送了本网站无法识别的请求。没有保存任何信息。",
    },
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: {
        "en": "What your browser sent was larger than any form on this site accepts. Nothing was stored.",
        "zh-hans": "您的浏览器发送的内容超出了本网站表单所能接受的大小。没有保存任何信息。",
    },
    HTTPStatus.REQUEST_URI_TOO_LONG: {
        "en": "The web address is longer than any page on this site has. Please check the link.",
        "zh-hans": "这个网址比本网站任何页面的网址都长。请检查链接是否正确。",
    },
}
PREFIX = {"zh-hans": "", "en": "/en"}


def assert_our_page(response, status: HTTPStatus, language: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert response["Content-Language"] == language
    body = response.content.decode()
    assert PAGES[status][language] in body
    assert 'class="site-footer"' in body  # the site's own page, with its header, footer and contact
    assert "Bad Request" not in body
    assert "Request Line is too large" not in body


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_bad_request_gets_our_400_page(client, language):
    response = client.get(f"{PREFIX[language]}/", HTTP_HOST="attacker.example")  # DisallowedHost
    assert_our_page(response, HTTPStatus.BAD_REQUEST, language)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_body_too_large_gets_our_413_page_and_stores_nothing(client, language):
    body = "name=" + "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.post(f"{PREFIX[language]}/consultation/", body, content_type="application/x-www-form-urlencoded")
    assert_our_page(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, language)
    assert_nothing_stored()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_too_many_fields_get_our_413_page(client, language):
    fields = {f"k{i}": "v" for i in range(django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = client.post(f"{PREFIX[language]}/consultation/", {**consultation_data(), **fields})
    assert_our_page(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, language)
    assert_nothing_stored()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_url_too_long_gets_our_414_page(client, language):
    response = client.get(f"{PREFIX[language]}/consultation/?q=" + "a" * MAX_URL_LENGTH)
    assert_our_page(response, HTTPStatus.REQUEST_URI_TOO_LONG, language)
    assert len(response.content) < MAX_URL_LENGTH * 2  # the language switch does not repeat the address
    assert client.get(f"{PREFIX[language]}/consultation/?q=" + "a" * 100).status_code == HTTPStatus.OK


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310  # a local http:// URL we built
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_behind_gunicorn_a_long_url_gets_our_414_page_not_gunicorns_400():
    """gunicorn refuses request lines over 4094 bytes itself, in English; our gunicorn config lets ours answer."""
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603  # this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            "piwarden.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "-c",
            "python:piwarden.gunicorn_conf",  # as piwarden serve runs it
        ],
        env=os.environ.copy(),  # the test run's data directory and keys; a 414 touches no database
        cwd=Path(django_settings.PACKAGE_DIR).parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # a loaded 2-core machine boots a worker slowly
        while True:
            try:
                if _get(f"{base}/en/")[0] == HTTPStatus.OK:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        status, body = _get(f"{base}/en/?q=" + "a" * 6000)  # over gunicorn's default 4094, under 8190
        assert status == HTTPStatus.REQUEST_URI_TOO_LONG
        assert PAGES[HTTPStatus.REQUEST_URI_TOO_LONG]["en"] in body
        status, body = _get(f"{base}/?q=" + "a" * 6000)
        assert status == HTTPStatus.REQUEST_URI_TOO_LONG
        assert PAGES[HTTPStatus.REQUEST_URI_TOO_LONG]["zh-hans"] in body
    finally:
        server.terminate()
        server.wait(timeout=15)


# --- the CAPTCHA ---------------------------------------------------------------------------


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self.checked: set[str] = set()
        self.images: list[dict[str, str]] = []
        self.submits: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(attributes)
        if tag == "input" and attributes.get("type") == "submit":
            self.submits.append(attributes)
        elif tag == "input" and attributes.get("name"):
            self.values[attributes["name"]] = attributes.get("value", "")
            if "checked" in attributes:
                self.checked.add(attributes["name"])


def inputs(response) -> _Inputs:
    reader = _Inputs()
    reader.feed(response.content.decode())
    return reader


@pytest.mark.parametrize(("language", "alt"), [("zh-hans", "验证码图片"), ("en", "Verification code picture")])
def test_the_captcha_picture_is_described_in_the_page_language(client, language, alt):
    images = [i for i in inputs(client.get(f"{PREFIX[language]}/consultation/")).images if "captcha" in i["src"]]
    assert len(images) == 1
    assert images[0]["alt"] == alt


@pytest.mark.parametrize(("language", "label"), [("zh-hans", "换一张图片"), ("en", "Show a new picture")])
def test_a_new_picture_without_javascript_keeps_what_was_typed_and_stores_nothing(client, monkeypatch, language, label):
    monkeypatch.setattr("captcha.conf.settings.CAPTCHA_TEST_MODE", False)
    url = f"{PREFIX[language]}/consultation/"
    form = inputs(client.get(url))
    button = next(s for s in form.submits if s.get("name") == "new_captcha")
    assert button["value"] == label
    assert "formnovalidate" in button  # the browser's own required-field check does not block it
    first_key = form.values["captcha_0"]

    typed = consultation_data(name="प्रिया शर्मा", company="<b>Acme</b>", captcha_0=first_key, captcha_1="")
    again = client.post(url, {**typed, "new_captcha": label})
    assert again.status_code == HTTPStatus.OK
    page = inputs(again)
    for name in ("name", "phone", "email", "company", "position", "submission_token"):
        assert page.values[name] == typed[name], name
    assert "consent" in page.checked
    assert page.values["captcha_0"] != first_key  # a new challenge
    assert CaptchaStore.objects.filter(hashkey=page.values["captcha_0"]).exists()
    assert page.values.get("captcha_1", "") == ""
    errors, alert = read_form_page(again)
    assert errors == {}
    assert not alert  # not refused: nothing was sent yet
    assert "<b>Acme</b>" not in again.content.decode()  # echoed escaped
    assert_nothing_stored()


# --- the receipt tells the truth about the e-mail -------------------------------------------

SENDING = {
    "en": "We are sending an acknowledgement to the e-mail address you gave us",
    "zh-hans": "我们正在向您填写的电子邮件地址发送确认邮件",
}
NOT_SENT = {
    "en": "This site does not send e-mail at present, so you will not receive an acknowledgement by e-mail.",
    "zh-hans": "本网站目前不发送电子邮件，因此您不会收到确认邮件。",
}


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_with_sealed_file_mail_the_receipt_does_not_claim_an_email_was_sent(client, settings, language):
    settings.MAILERS = {
        "default": {"BACKEND": "piwarden.vault.outbox.SealedFileBackend", "OPTIONS": {"file_path": "unused"}}
    }
    url = received_url(client)
    body = client.get(f"{PREFIX[language]}{url}").content.decode()
    assert NOT_SENT[language] in body
    assert SENDING[language] not in body
    assert "We have sent" not in body
    assert "我们已向您填写的电子邮箱发送了确认邮件" not in body


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_with_smtp_the_receipt_says_the_acknowledgement_is_on_its_way(client, settings, language):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": {}}}
    url = received_url(client)
    body = client.get(f"{PREFIX[language]}{url}").content.decode()
    assert SENDING[language] in body
    assert NOT_SENT[language] not in body
    assert Inquiry.objects.count() == 1
