"""Date of birth at sign-up (issue 9 §2): under 14, the account waits for a guardian and cannot
sign in; ``accounts.actions.guardian_consented`` (the children app's hook) makes it usable."""

from __future__ import annotations

import datetime
from http import HTTPStatus

import pytest
import time_machine
from django.test import Client

from piwarden.accounts.actions import guardian_consented, is_child
from piwarden.accounts.models import AccountSession, AccountState, LoginRecord, LoginResult
from piwarden.audit.models import AuditEvent, EventType
from tests.accounts.helpers import open_account, signed_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("CHD-01")]

CHILD = {"email": "xiao.ming@example.com", "date_of_birth": "2016-03-01", "guardian_email": "parent@example.com"}


@pytest.fixture(autouse=True)
def _captcha_test_mode(settings):
    settings.CAPTCHA_TEST_MODE = True


@time_machine.travel(datetime.datetime(2026, 12, 4, 12, tzinfo=datetime.UTC))
def test_the_fourteenth_birthday_is_the_line():
    assert is_child(datetime.date(2012, 12, 5))  # 14 tomorrow
    assert not is_child(datetime.date(2012, 12, 4))  # 14 today


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_child_account_waits_for_the_guardian_and_says_why(language):
    client = Client()
    account = open_account(client, language=language, **CHILD)
    assert account.state == AccountState.PENDING_GUARDIAN
    assert account.needs_guardian
    assert account.date_of_birth == "2016-03-01"
    assert account.guardian_email == "parent@example.com"  # stored, encrypted
    response = signed_in(client, email=CHILD["email"], language=language)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert ("未满 14 周岁" if language == "zh-hans" else "under 14") in response.content.decode()
    assert not AccountSession.objects.exists()
    assert LoginRecord.objects.get(person_id=account.person_id).result == LoginResult.PENDING_GUARDIAN

    consented = guardian_consented(account)
    assert consented.state == AccountState.ACTIVE
    assert AuditEvent.objects.filter(event_type=EventType.ACCOUNT_GUARDIAN_CONSENTED).count() == 1
    assert guardian_consented(consented).guardian_consented_at == consented.guardian_consented_at  # idempotent
    assert signed_in(client, email=CHILD["email"], language=language).status_code == HTTPStatus.FOUND


def test_a_guardian_consenting_before_the_child_confirms_leaves_the_confirmation_to_do():
    from piwarden.accounts.actions import verify_email  # noqa: PLC0415
    from tests.accounts.helpers import account_of, sign_up_data  # noqa: PLC0415

    Client().post("/en/account/sign-up/", sign_up_data(**CHILD))
    account = guardian_consented(account_of(CHILD["email"]))
    assert account.state == AccountState.UNVERIFIED
    assert verify_email(account).state == AccountState.ACTIVE


def test_an_adult_gives_no_guardian_address():
    client = Client()
    account = open_account(client, guardian_email="parent@example.com")  # typed, but not a child's
    assert account.state == AccountState.ACTIVE
    assert account.guardian_email == ""


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_guardian_is_mailed_at_sign_up_and_their_consent_through_the_link_opens_the_account(language):
    """The whole path (policy §八): a child signs up, the guardian gets the children app's one-use link
    by e-mail, consents separately on its page, and only then can the child (address confirmed) sign in."""
    from tests.accounts.helpers import link_in_mail, run_worker  # noqa: PLC0415

    client = Client()
    account = open_account(client, language=language, **CHILD)  # the child confirmed their address
    assert account.state == AccountState.PENDING_GUARDIAN
    run_worker()
    link = link_in_mail(CHILD["guardian_email"], "/")
    assert "/guardian/" in link
    assert signed_in(client, email=CHILD["email"], language=language).status_code == HTTPStatus.FORBIDDEN
    guardian = Client()
    assert guardian.post(link, {"decision": "consent"}).status_code == HTTPStatus.BAD_REQUEST  # no tick
    account.refresh_from_db()
    assert account.state == AccountState.PENDING_GUARDIAN
    assert guardian.post(link, {"decision": "consent", "separate_consent": "on"}).status_code == HTTPStatus.OK
    account.refresh_from_db()
    assert account.state == AccountState.ACTIVE
    assert AuditEvent.objects.filter(event_type=EventType.ACCOUNT_GUARDIAN_CONSENTED).count() == 1
    assert signed_in(client, email=CHILD["email"], language=language).status_code == HTTPStatus.FOUND
