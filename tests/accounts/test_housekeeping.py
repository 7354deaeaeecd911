"""The retention sweep deletes visitor sessions a day after their end and login records after 184 days;
the housekeeping deletes accounts never confirmed."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from piwarden.accounts.models import Account, AccountSession, LoginRecord
from piwarden.people.models import Person
from piwarden.retention.sweep import sweep
from piwarden.site.actions import sweep_retention
from tests.accounts.helpers import open_account, sign_up_data, signed_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("RET-02"), pytest.mark.duty("RET-04")]


def test_old_login_records_and_ended_sessions_go_and_the_rest_stays(settings):
    settings.CAPTCHA_TEST_MODE = True
    client = Client()
    account = open_account(client)
    signed_in(client)
    signed_in(Client())
    signed_in(Client())
    now = timezone.now()
    old, young, _ = LoginRecord.objects.filter(person_id=account.person_id).order_by("occurred_at")
    LoginRecord.objects.filter(pk=old.pk).update(occurred_at=now - datetime.timedelta(days=184, minutes=1))
    LoginRecord.objects.filter(pk=young.pk).update(occurred_at=now - datetime.timedelta(days=183))
    ended, idle, live = AccountSession.objects.order_by("created_at")
    # Over a day ago (idle 30 minutes after its last request): past the declared day after its end.
    AccountSession.objects.filter(pk=ended.pk).update(last_seen_at=now - datetime.timedelta(days=1, minutes=31))
    # Over, but less than a day ago: it opens nothing any more, and is kept the declared day.
    AccountSession.objects.filter(pk=idle.pk).update(last_seen_at=now - datetime.timedelta(minutes=31))

    report = sweep(now)

    assert not LoginRecord.objects.filter(pk=old.pk).exists()
    assert LoginRecord.objects.filter(pk=young.pk).exists()
    assert set(AccountSession.objects.values_list("pk", flat=True)) == {idle.pk, live.pk}
    rows = {o.model: o.rows for o in report.outcomes}
    assert rows["accounts.LoginRecord"] == 1
    assert rows["accounts.AccountSession"] == 1
    assert not Person.objects.get(pk=account.person_id).is_erased


def test_an_account_never_confirmed_goes_after_seven_days_with_the_person_nothing_else_holds(settings):
    settings.CAPTCHA_TEST_MODE = True
    assert Client().post("/en/account/sign-up/", sign_up_data()).status_code == 302
    assert Client().post("/en/account/sign-up/", sign_up_data(email="wang.fang@example.com")).status_code == 302
    stale, fresh = Account.objects.order_by("created_at")
    now = timezone.now()
    Account.objects.filter(pk=stale.pk).update(created_at=now - datetime.timedelta(days=7, minutes=1))

    result = sweep_retention(now)

    assert list(Account.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert result.deleted["unconfirmed accounts"] == 1
    person = Person.objects.get(pk=stale.person_id)
    assert person.erased_at is not None
    assert person.email_index is None
