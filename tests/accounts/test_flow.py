"""The account's whole life through its pages: sign up, confirm, sign in and out, change and
reset the password, cancel (issue 9 §1)."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from django.core import mail
from django.test import Client

from piwarden.accounts.models import Account, AccountSession, AccountState, LoginRecord, LoginResult
from piwarden.audit.models import AuditEvent, EventType
from piwarden.people.models import Person
from tests.accounts.helpers import PASSWORD, account_of, link_in_mail, open_account, run_worker, sign_up_data, signed_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _captcha_test_mode(settings):
    settings.CAPTCHA_TEST_MODE = True


@pytest.mark.duty("NOT-06")
def test_sign_up_confirm_sign_in_page_and_sign_out():
    client = Client()
    account = open_account(client)
    assert account.state == AccountState.ACTIVE
    assert account.email == "li.na@example.com"
    assert account.password.startswith("argon2$argon2id$")

    response = signed_in(client)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/en/account/"
    cookie = client.cookies["piwarden_account"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert "sessionid" not in client.cookies  # never a staff session

    page = client.get("/en/account/")
    assert page.status_code == HTTPStatus.OK
    text = page.content.decode()
    assert "li.na@example.com" in text
    assert "Signed in" in text  # the login log shows the sign-in
    record = LoginRecord.objects.get(person_id=account.person_id)
    assert record.result == LoginResult.SUCCESS
    assert record.ip_prefix == "127.0.0.0/24"

    assert client.post("/en/account/sign-out/").status_code == HTTPStatus.FOUND
    assert not AccountSession.objects.exists()
    assert client.get("/en/account/")["Location"] == "/en/account/sign-in/"


def test_an_unconfirmed_account_cannot_sign_in_and_says_why():
    client = Client()
    assert client.post("/account/sign-up/", sign_up_data()).status_code == HTTPStatus.FOUND
    response = signed_in(client, language="zh-hans")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "请先确认" in response.content.decode()
    assert not AccountSession.objects.exists()


def test_signing_up_with_a_known_address_mails_the_owner_and_answers_the_same():
    client = Client()
    open_account(client)
    mail.outbox.clear()
    again = client.post("/en/account/sign-up/", sign_up_data(password="another long enough password"))
    fresh = client.post("/en/account/sign-up/", sign_up_data(email="wang.fang@example.com"))
    assert again.status_code == fresh.status_code == HTTPStatus.FOUND
    assert again["Location"] == fresh["Location"]
    assert Account.objects.count() == 2
    run_worker()
    (notice,) = [m for m in mail.outbox if "li.na@example.com" in m.to]
    assert "already has one" in notice.body
    assert (
        account_of("li.na@example.com").password == Account.objects.get(pk=account_of("li.na@example.com").pk).password
    )
    assert AuditEvent.objects.filter(event_type=EventType.ACCOUNT_SIGN_UP_REPEATED).count() == 1


def _page_without_token(response, address: str) -> str:
    text = response.content.decode().replace(address, "ADDRESS")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)


def test_wrong_password_and_unknown_address_get_the_same_answer():
    client = Client()
    account = open_account(client)
    wrong = signed_in(client, password="not the password at all, no")
    unknown = signed_in(client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == HTTPStatus.BAD_REQUEST
    assert _page_without_token(wrong, "li.na@example.com") == _page_without_token(unknown, "nobody@example.com")
    assert LoginRecord.objects.get(person_id=account.person_id).result == LoginResult.WRONG_PASSWORD


def test_change_password_ends_other_sessions_and_mails_a_notice():
    client, other = Client(), Client()
    open_account(client)
    signed_in(client)
    signed_in(other)
    assert AccountSession.objects.count() == 2
    new = "a brand new and long enough password"
    response = client.post("/en/account/password/", {"current": PASSWORD, "password": new})
    assert response.status_code == HTTPStatus.OK
    assert client.get("/en/account/").status_code == HTTPStatus.OK  # this browser stays signed in
    assert other.get("/en/account/").status_code == HTTPStatus.FOUND  # the other one is out
    assert signed_in(Client(), password=new).status_code == HTTPStatus.FOUND
    run_worker()
    assert any("was just changed" in m.body for m in mail.outbox)


def test_reset_by_mailed_link_works_once():
    client = Client()
    open_account(client)
    assert (
        client.post("/en/account/reset/", {"email": "li.na@example.com", "captcha_0": "x", "captcha_1": "PASSED"})[
            "Location"
        ]
        == "/en/account/reset/sent/"
    )
    run_worker()
    link = link_in_mail("li.na@example.com", "/account/reset/new/")
    token = link.split("token=")[1]
    assert client.get(link).status_code == HTTPStatus.OK
    new = "reset to something quite long"
    assert client.post("/en/account/reset/new/", {"token": token, "password": new}).status_code == HTTPStatus.OK
    assert client.post("/en/account/reset/new/", {"token": token, "password": new + "!"}).status_code == 404
    assert signed_in(Client(), password=new).status_code == HTTPStatus.FOUND


def test_reset_for_an_unknown_address_answers_the_same_and_mails_nobody():
    client = Client()
    response = client.post(
        "/en/account/reset/", {"email": "nobody@example.com", "captcha_0": "x", "captcha_1": "PASSED"}
    )
    assert response["Location"] == "/en/account/reset/sent/"
    run_worker()
    assert mail.outbox == []


@pytest.mark.duty("RGT-11")
def test_cancel_erases_the_person_and_keeps_the_login_log():
    client = Client()
    account = open_account(client)
    signed_in(client)
    assert client.post("/en/account/cancel/", {"password": PASSWORD}).status_code == HTTPStatus.BAD_REQUEST
    assert client.post("/en/account/cancel/", {"password": "wrong password here", "confirm": "on"}).status_code == 400
    response = client.post("/en/account/cancel/", {"password": PASSWORD, "confirm": "on"})
    assert response["Location"] == "/en/account/cancelled/"
    assert not Account.objects.exists()
    assert not AccountSession.objects.exists()
    person = Person.objects.get(pk=account.person_id)
    assert person.erased_at is not None
    assert person.email_index is None
    log = LoginRecord.objects.filter(person=person)
    assert log.count() == 1
    assert log.get().ip_prefix == "127.0.0.0/24"  # readable: its own key survives
    assert client.get("/en/account/")["Location"] == "/en/account/sign-in/"
