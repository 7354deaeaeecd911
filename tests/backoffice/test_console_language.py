"""The staff console speaks the staff member's language: their own choice, else their browser's."""

from __future__ import annotations

import uuid
from http import HTTPStatus

import pytest
from django.conf import settings
from django.test import Client

from piwarden.audit.models import AuditEvent
from piwarden.staff.models import StaffPreference
from tests.conftest import STAFF_PASSWORD, sign_in

pytestmark = pytest.mark.django_db

LOGIN = "/backoffice/login/"
PREFERENCES = "/backoffice/preferences/"
ENGLISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9"}
CHINESE_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}


def browser(headers: dict[str, str]) -> Client:
    return Client(headers={"Accept-Language": headers["HTTP_ACCEPT_LANGUAGE"]})


def text(response) -> str:
    return response.content.decode()


def test_the_sign_in_page_follows_the_browser_before_anyone_signs_in():
    english = Client().get(LOGIN, **ENGLISH_BROWSER)
    assert english.status_code == HTTPStatus.OK
    assert '<html lang="en">' in text(english)
    assert "Staff sign-in" in text(english)
    assert "员工登录" not in text(english)
    assert english["Content-Language"] == "en"
    chinese = Client().get(LOGIN, **CHINESE_BROWSER)
    assert "员工登录" in text(chinese)
    assert '<html lang="zh-Hans">' in text(chinese)
    assert "Accept-Language" in english["Vary"]


def test_sign_in_errors_follow_the_browser(alice):
    data = {"username": "alice", "password": "not the password", "otp_token": "123456"}
    english = Client().post(LOGIN, data, **ENGLISH_BROWSER)
    assert english.status_code == HTTPStatus.BAD_REQUEST
    assert "The username, password or authenticator code is not right." in text(english)
    chinese = Client().post(LOGIN, data, **CHINESE_BROWSER)
    assert "用户名、密码或动态码不正确" in text(chinese)


def test_the_lockout_page_follows_the_browser(alice):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": "alice", "password": uuid.uuid4().hex, "otp_token": "123456"})
    locked = client.post(
        LOGIN, {"username": "alice", "password": STAFF_PASSWORD, "otp_token": "123456"}, **ENGLISH_BROWSER
    )
    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Sign-in paused" in text(locked)
    assert "登录已暂停" not in text(locked)


def test_after_sign_in_the_console_follows_the_browser_until_a_choice_is_made(alice):
    client = browser(ENGLISH_BROWSER)
    assert sign_in(client, alice).status_code == HTTPStatus.FOUND
    inbox = client.get("/backoffice/")
    assert "Consultation requests" in text(inbox)
    assert "咨询请求" not in text(inbox)


@pytest.mark.duty("SEC-02")
def test_a_chosen_language_is_kept_with_the_account_and_wins_over_the_browser(alice, bob):
    client = browser(CHINESE_BROWSER)
    assert sign_in(client, bob).status_code == HTTPStatus.FOUND
    saved = client.post(PREFERENCES, {"language": "en"})
    assert saved.status_code == HTTPStatus.FOUND
    page = client.get(saved["Location"])
    assert "Saved. The console now speaks the language you chose." in text(page)
    assert StaffPreference.objects.get(user=bob).language == "en"
    event = AuditEvent.objects.get(event_type="staff.language_set")
    assert event.actor == bob
    assert event.extra == {"language": "en"}
    # Every console page, in a browser that asks for Chinese.
    for url in ("/backoffice/", "/backoffice/audit/", PREFERENCES):
        body = text(client.get(url))
        assert '<html lang="en">' in body, url
        assert "Staff console" in body, url
    # The choice belongs to the account, not to this browser: a new session elsewhere has it too.
    client.post("/backoffice/logout/")
    elsewhere = browser(CHINESE_BROWSER)
    assert sign_in(elsewhere, bob).status_code == HTTPStatus.FOUND
    assert "Audit log" in text(elsewhere.get("/backoffice/audit/"))
    # It is bob's choice only.
    other = browser(CHINESE_BROWSER)
    sign_in(other, alice)
    assert "咨询请求" in text(other.get("/backoffice/"))


def test_going_back_to_the_browser_language(alice):
    client = browser(ENGLISH_BROWSER)
    sign_in(client, alice)
    client.post(PREFERENCES, {"language": "zh-hans"})
    assert "咨询请求" in text(client.get("/backoffice/"))
    client.post(PREFERENCES, {"language": ""})
    assert StaffPreference.objects.get(user=alice).language == ""
    assert "Consultation requests" in text(client.get("/backoffice/"))


@pytest.mark.parametrize("value", ["fr", "zh-hant", "en<script>", "x" * 50])
def test_an_unknown_language_is_refused_and_nothing_changes(alice, value):
    client = browser(ENGLISH_BROWSER)
    sign_in(client, alice)
    client.post(PREFERENCES, {"language": "zh-hans"})
    refused = client.post(PREFERENCES, {"language": value})
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert "未做任何更改" in text(refused)  # in the staff member's (chosen) language
    assert StaffPreference.objects.get(user=alice).language == "zh-hans"
    assert AuditEvent.objects.filter(event_type="staff.language_set").count() == 1


def test_the_preferences_page_needs_a_signed_in_staff_member(alice):
    client = Client()
    response = client.post(PREFERENCES, {"language": "en"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(LOGIN)
    assert not StaffPreference.objects.exists()
