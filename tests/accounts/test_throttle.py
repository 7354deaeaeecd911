"""Brute force (issue 9 §1): throttled per client, per (account, client) and per account, before
any hash is computed; the owner still signs in during an attack on their account."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm
from django.test import Client

from piwarden.accounts import passwords
from piwarden.accounts.models import LoginRecord, LoginResult
from piwarden.audit.models import AuditEvent, EventType
from tests.accounts import hashers
from tests.accounts.helpers import PASSWORD, open_account, signed_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("SEC-01")]


@pytest.fixture
def counted(settings):
    settings.CAPTCHA_TEST_MODE = True
    others = [h for h in settings.PASSWORD_HASHERS if not h.endswith("Argon2PasswordHasher")]
    settings.PASSWORD_HASHERS = ["tests.accounts.hashers.CountingArgon2PasswordHasher", *others]
    _forget()
    yield hashers.CALLS
    _forget()


def _forget() -> None:
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()
    passwords._dummy_hash.cache_clear()
    hashers.CALLS.clear()


def attacker(number: int) -> Client:
    """A client at its own address (the limits count REMOTE_ADDR)."""
    return Client(REMOTE_ADDR=f"198.51.100.{number}")


def test_one_client_guessing_one_account_is_refused_before_any_hash(counted, settings):
    settings.PIWARDEN_SIGN_IN_PAIR_RATE = "3/h"
    account = open_account(Client())
    guesser = attacker(1)
    for _ in range(3):
        assert signed_in(guesser, password="a wrong guess, long enough").status_code == HTTPStatus.BAD_REQUEST
    counted.clear()
    for _ in range(5):
        refused = signed_in(guesser, password=PASSWORD)  # even the right password
        assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert int(refused["Retry-After"]) > 0
    assert counted == []  # not one hash computed for the refused attempts
    # The refusal is in the holder's login log once, and in the audit log once (no client named).
    assert LoginRecord.objects.filter(person_id=account.person_id, result=LoginResult.THROTTLED).count() == 1
    refusals = AuditEvent.objects.filter(event_type=EventType.RATE_LIMITED, extra__scope="account_sign_in_pair")
    assert refusals.count() == 1
    # The owner, from their own browser, still signs in.
    assert signed_in(Client(REMOTE_ADDR="203.0.113.7")).status_code == HTTPStatus.FOUND


def test_many_clients_guessing_one_account_bring_the_captcha_not_a_block(counted, settings):
    settings.PIWARDEN_SIGN_IN_ACCOUNT_RATE = "4/h"
    open_account(Client())
    for number in range(4):
        assert signed_in(attacker(number), password="a wrong guess, long enough").status_code == 400
    counted.clear()
    asked = signed_in(attacker(9), password="another wrong guess here")
    assert asked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 'name="captcha_1"' in asked.content.decode()
    assert counted == []  # no hash without the CAPTCHA
    # The owner answers the picture and signs in.
    owner = Client(REMOTE_ADDR="203.0.113.7")
    data = {"email": "li.na@example.com", "password": PASSWORD, "captcha_0": "x", "captcha_1": "PASSED"}
    assert owner.post("/en/account/sign-in/", data).status_code == HTTPStatus.FOUND
    assert counted == ["verify"]


def test_one_client_trying_many_accounts_is_refused(counted, settings):
    settings.PIWARDEN_SIGN_IN_RATE = "3/h"
    stuffer = attacker(2)
    for number in range(3):
        assert signed_in(stuffer, email=f"someone{number}@example.com").status_code == HTTPStatus.BAD_REQUEST
    assert counted == ["encode", "verify", "verify", "verify"]  # the dummy hash is made once, then verified
    counted.clear()
    assert signed_in(stuffer, email="someone9@example.com").status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert counted == []


def test_unknown_and_known_addresses_cost_one_verification_each(counted):
    open_account(Client())
    signed_in(Client(), email="nobody@example.com")
    counted.clear()
    signed_in(Client(), email="nobody@example.com", password="a wrong guess, long enough")
    unknown = list(counted)
    counted.clear()
    signed_in(Client(), password="a wrong guess, long enough")
    assert unknown == counted == ["verify"]


def test_sign_up_hashes_for_known_and_unknown_addresses_alike(counted):
    from tests.accounts.helpers import sign_up_data  # noqa: PLC0415

    Client().post("/en/account/sign-up/", sign_up_data())
    assert counted == ["encode"]
    counted.clear()
    Client().post("/en/account/sign-up/", sign_up_data())  # known now: the owner is e-mailed instead
    assert counted == ["encode"]
