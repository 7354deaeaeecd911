"""Optional TOTP for visitors: set up, then asked at sign-in; a replayed code is refused."""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest
from django.test import Client
from django_otp.oath import TOTP

from piwarden.accounts.models import AccountAuthenticator
from tests.accounts.helpers import PASSWORD, open_account, signed_in

pytestmark = pytest.mark.django_db(transaction=True)


def code_for(secret: str, offset: int = 0) -> str:
    totp = TOTP(bytes.fromhex(secret), 30, 0, 6, 0)
    totp.time = time.time() + offset
    return f"{totp.token():06d}"


def test_an_authenticator_is_set_up_then_asked_for_and_a_code_is_used_once(settings):
    settings.CAPTCHA_TEST_MODE = True
    client = Client()
    open_account(client)
    signed_in(client)
    page = client.get("/en/account/authenticator/")
    assert page.status_code == HTTPStatus.OK
    device = AccountAuthenticator.objects.get()
    secret = device.secret
    assert secret is not None
    assert secret not in AccountAuthenticator.objects.filter(pk=device.pk).values_list("secret", flat=True)[0].hex()
    assert client.post("/en/account/authenticator/", {"code": "000000"}).status_code == HTTPStatus.BAD_REQUEST
    # The code is kept, not computed again below: a 30-second boundary crossed in between (a loaded
    # machine) would make the second computation a different, unused code.
    used = code_for(secret, -30)
    assert client.post("/en/account/authenticator/", {"code": used}).status_code == HTTPStatus.OK
    assert AccountAuthenticator.objects.get().confirmed

    other = Client()
    response = signed_in(other)
    assert response["Location"] == "/en/account/sign-in/code/"
    assert other.get("/en/account/")["Location"] == "/en/account/sign-in/"  # half signed in is not signed in
    assert other.post("/en/account/sign-in/code/", {"code": used}).status_code == HTTPStatus.BAD_REQUEST  # replay
    assert other.post("/en/account/sign-in/code/", {"code": code_for(secret)})["Location"] == "/en/account/"
    assert other.get("/en/account/").status_code == HTTPStatus.OK

    # Removing it asks for the password.
    assert other.post("/en/account/authenticator/remove/", {"password": "wrong one"}).status_code == 400
    assert other.post("/en/account/authenticator/remove/", {"password": PASSWORD}).status_code == HTTPStatus.FOUND
    assert not AccountAuthenticator.objects.exists()
