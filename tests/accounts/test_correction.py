"""An account holder's correction through the rights portal corrects the account (PIPL 46), over HTTP:
the request asked and verified, completed by a privacy officer in the console with the confirmed
values, the new e-mail address confirmed again by the link mailed to it, and signed in with."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.db import transaction
from django.test import Client

from piwarden.accounts.actions import correct_account_email
from piwarden.accounts.models import AccountState
from piwarden.audit.models import AuditEvent
from piwarden.rights.models import RequestKind
from tests.accounts.helpers import link_in_mail, open_account, run_worker, signed_in
from tests.rights.staffing import act, console, verified_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("RGT-04")]

PHONE = "correct__accounts__Account__phone"
EMAIL = "correct__accounts__Account__email"
NEW_ADDRESS = "li.na.new@example.com"
THIRD_ADDRESS = "li.na.third@example.com"


def test_a_correction_request_corrects_the_accounts_mobile_number_and_email_with_reconfirmation(settings, carol):
    settings.CAPTCHA_TEST_MODE = True
    account = open_account(Client(), phone="13800138000")
    request = verified_request("li.na@example.com", kind=RequestKind.CORRECTION, details="我的手机号码和电子邮箱已更换")
    staff = console(carol)
    page = staff.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert f'name="{PHONE}"' in page
    assert f'name="{EMAIL}"' in page

    result = "已更正您账号的手机号码和电子邮箱。"
    response = act(staff, request.reference, "complete", result=result, **{PHONE: "13900139000", EMAIL: NEW_ADDRESS})
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    account.refresh_from_db()
    assert (account.phone, account.email) == ("+8613900139000", NEW_ADDRESS)
    assert (account.email_verified_at, account.state) == (None, AccountState.ACTIVE)  # usable, to confirm again
    [event] = AuditEvent.objects.filter(event_type="person.corrected")
    assert event.fields == ["accounts.Account.email", "accounts.Account.phone"]
    assert "139" not in str(event.extra)
    assert "li.na.new" not in str(event.extra)

    # The new address is confirmed by the link mailed to it, and by nothing mailed before.
    run_worker()
    token = link_in_mail(NEW_ADDRESS, "/account/verify/").split("token=")[1]
    with transaction.atomic():  # a second correction, before the first link is used
        correct_account_email(account, THIRD_ADDRESS)
    assert Client().post("/en/account/verify/", {"token": token}).status_code == HTTPStatus.NOT_FOUND
    account.refresh_from_db()
    assert account.email_verified_at is None
    with transaction.atomic():
        correct_account_email(account, NEW_ADDRESS)
    run_worker()
    token = link_in_mail(NEW_ADDRESS, "/account/verify/").split("token=")[1]
    assert Client().post("/en/account/verify/", {"token": token}).status_code == HTTPStatus.OK
    account.refresh_from_db()
    assert account.email_verified_at is not None

    # The account is found by its new address only.
    assert signed_in(Client(), email=NEW_ADDRESS).status_code == HTTPStatus.FOUND
    assert signed_in(Client()).status_code != HTTPStatus.FOUND


def test_an_address_another_account_holds_is_refused_and_nothing_changes(settings, carol):
    settings.CAPTCHA_TEST_MODE = True
    account = open_account(Client())
    open_account(Client(), email=NEW_ADDRESS)
    request = verified_request("li.na@example.com", kind=RequestKind.CORRECTION, details="我的电子邮箱已更换")
    response = act(console(carol), request.reference, "complete", result="已更正。", **{EMAIL: NEW_ADDRESS})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    account.refresh_from_db()
    assert account.email == "li.na@example.com"
    assert not AuditEvent.objects.filter(event_type="person.corrected").exists()
