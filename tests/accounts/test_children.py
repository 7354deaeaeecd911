"""Date of birth at sign-up (issue 9 §2; law CHD-01): under 14, nothing of the child is stored until a
guardian consents through the e-mailed link; their consent opens the account
(``accounts.actions.open_child_account``, the children app's hook), which the child then confirms."""

from __future__ import annotations

import datetime
from http import HTTPStatus

import pytest
import time_machine
from django.contrib.auth.hashers import check_password, make_password
from django.test import Client

from piwarden.accounts.actions import guardian_consented, is_child, open_child_account
from piwarden.accounts.models import Account, AccountSession, AccountState, LoginRecord, LoginResult
from piwarden.audit.models import AuditEvent, EventType
from piwarden.children.models import GuardianRequest
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.people.models import Person
from piwarden.vault.blind import email_index
from tests.accounts.helpers import PASSWORD, account_of, link_in_mail, open_account, run_worker, sign_up_data, signed_in
from tests.vault.test_canary import assert_absent_from_every_row, canaries

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
def test_before_the_guardian_acts_nothing_of_the_child_is_stored(language):
    """CHD-01: a child's sign-up leaves no person, no account, no index, and none of its values in
    plaintext in any row; only the request to the guardian, sealed under its own key.  Signing in
    answers as for an address nobody has."""
    values = canaries()
    child = {"email": values["email"], "phone": values["phone"], "date_of_birth": "2015-07-23"}
    guardian = f"guardian-{values['name'].lower()}@example.com"
    client = Client()
    prefix = "/en" if language == "en" else ""
    response = client.post(f"{prefix}/account/sign-up/", sign_up_data(**child, guardian_email=guardian))
    assert response.status_code == HTTPStatus.FOUND
    run_worker()  # the guardian's e-mail goes out
    assert link_in_mail(guardian, "/")
    # Its address was read in the use the gate allowed about nobody stored yet, and recorded so.
    [use] = AuditEvent.objects.filter(event_type=EventType.PROCESSING_UNDER_BASIS)
    assert (use.person_id, use.purpose, use.extra["context"]) == (
        None,
        "children_protection",
        "children.guardian_request",
    )
    assert not Account.objects.exists()
    assert not Person.objects.exists()
    assert not Person.objects.filter(email_index=email_index(child["email"])).exists()
    [request] = GuardianRequest.objects.all()
    assert request.person_id is None
    assert request.data_key_id not in set(Person.objects.values_list("data_key_id", flat=True))
    assert not ConsentRecord.objects.exists()
    assert_absent_from_every_row({**values, "date_of_birth": child["date_of_birth"], "guardian": guardian})
    # Nothing to sign in to: the same answer as an unknown address, no login record.
    wrong = signed_in(client, email=child["email"], language=language)
    assert wrong.status_code == signed_in(Client(), email="nobody@example.com", language=language).status_code
    assert not LoginRecord.objects.exists()


def test_an_account_opened_but_whose_guardians_consent_is_not_recorded_yet_cannot_sign_in_and_says_why():
    """The first step of the guardian's consent opens the account, the second records the consent:
    between the two (a crash), the account waits and its holder is told why."""
    client = Client()
    person = open_child_account(
        {
            "email": CHILD["email"],
            "phone": "",
            "date_of_birth": CHILD["date_of_birth"],
            "guardian_email": CHILD["guardian_email"],
            "password": make_password(PASSWORD),
            "language": "en",
        }
    )
    assert person is not None
    run_worker()
    token = link_in_mail(CHILD["email"], "/account/verify/").split("token=")[1]
    assert client.post("/en/account/verify/", {"token": token}).status_code == HTTPStatus.OK
    account = account_of(CHILD["email"])
    assert account.state == AccountState.PENDING_GUARDIAN
    for language, words in (("zh-hans", "未满 14 周岁"), ("en", "under 14")):
        response = signed_in(client, email=CHILD["email"], language=language)
        assert response.status_code == HTTPStatus.FORBIDDEN
        assert words in response.content.decode()
    assert not AccountSession.objects.exists()
    assert LoginRecord.objects.filter(person_id=account.person_id).first().result == LoginResult.PENDING_GUARDIAN
    # The guardian's consent, once recorded, opens it (idempotent).
    consented = guardian_consented(account)
    assert consented.state == AccountState.ACTIVE
    assert guardian_consented(consented).guardian_consented_at == consented.guardian_consented_at
    assert AuditEvent.objects.filter(event_type=EventType.ACCOUNT_GUARDIAN_CONSENTED).count() == 1
    assert signed_in(client, email=CHILD["email"]).status_code == HTTPStatus.FOUND


def test_an_adult_gives_no_guardian_address():
    client = Client()
    account = open_account(client, guardian_email="parent@example.com")  # typed, but not a child's
    assert account.state == AccountState.ACTIVE
    assert account.guardian_email == ""


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_guardian_is_mailed_at_sign_up_and_their_consent_through_the_link_opens_the_account(language):
    """The whole path (policy §八): a child signs up, the guardian gets the children app's one-use link
    by e-mail, consents separately on its page; only then is the account opened, its confirmation
    e-mailed to the child, and once confirmed the child can sign in."""
    client = Client()
    prefix = "/en" if language == "en" else ""
    assert client.post(f"{prefix}/account/sign-up/", sign_up_data(language=language, **CHILD)).status_code == 302
    run_worker()
    link = link_in_mail(CHILD["guardian_email"], "/")
    assert "/guardian/" in link
    assert not Account.objects.exists()
    guardian = Client()
    assert guardian.post(link, {"decision": "consent"}).status_code == HTTPStatus.BAD_REQUEST  # no tick
    assert not Account.objects.exists()
    assert guardian.post(link, {"decision": "consent", "separate_consent": "on"}).status_code == HTTPStatus.OK
    account = account_of(CHILD["email"])
    assert (account.state, account.needs_guardian) == (AccountState.UNVERIFIED, True)
    assert account.guardian_consented_at is not None
    assert (account.date_of_birth, account.guardian_email) == (CHILD["date_of_birth"], CHILD["guardian_email"])
    assert check_password(PASSWORD, account.password)
    [consent] = ConsentRecord.objects.filter(person_id=account.person_id)
    assert (consent.purpose, consent.kind) == ("visitor_account", ConsentKind.SEPARATE)
    assert AuditEvent.objects.filter(event_type=EventType.ACCOUNT_GUARDIAN_CONSENTED).count() == 1
    assert guardian.post(link, {"decision": "consent", "separate_consent": "on"}).status_code == HTTPStatus.NOT_FOUND
    run_worker()  # the child's confirmation e-mail, sent only now
    token = link_in_mail(CHILD["email"], "/account/verify/").split("token=")[1]
    assert client.post(f"{prefix}/account/verify/", {"token": token}).status_code == HTTPStatus.OK
    account.refresh_from_db()
    assert account.state == AccountState.ACTIVE
    assert signed_in(client, email=CHILD["email"], language=language).status_code == HTTPStatus.FOUND


def test_a_guardians_refusal_leaves_nothing_and_no_account_can_be_opened_by_the_link():
    client = Client()
    assert client.post("/en/account/sign-up/", sign_up_data(**CHILD)).status_code == 302
    run_worker()
    link = link_in_mail(CHILD["guardian_email"], "/")
    assert Client().post(link, {"decision": "refuse"}).status_code == HTTPStatus.OK
    assert not GuardianRequest.objects.exists()
    assert not Account.objects.exists()
    assert not Person.objects.exists()
    assert Client().post(link, {"decision": "consent", "separate_consent": "on"}).status_code == HTTPStatus.NOT_FOUND
    assert not Account.objects.exists()
