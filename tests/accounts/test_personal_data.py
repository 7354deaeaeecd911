"""The rights portal's copy and erasure reach accounts: every account category is exported, and
erasure deletes the account and keeps the login log (the registry's exporters and erasers)."""

from __future__ import annotations

import pytest
from django.test import Client

from piwarden.accounts.models import Account, LoginRecord
from piwarden.people.actions import erase_person
from piwarden.people.models import Person
from piwarden.people.registry import Section, export_person
from piwarden.policy.declaration import load_declaration
from tests.accounts.helpers import open_account, signed_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("RGT-11")]


def test_the_data_copy_holds_the_account_and_its_login_log_and_erasure_keeps_only_the_log(settings):
    settings.CAPTCHA_TEST_MODE = True
    client = Client()
    account = open_account(client, phone="13800138000")
    signed_in(client)
    person = Person.objects.get(pk=account.person_id)
    items = list(export_person(person, load_declaration(), context="test.export"))
    by_category: dict[str, list[object]] = {}
    current = ""
    for item in items:
        if isinstance(item, Section):
            current = item.category
            by_category[current] = []
        else:
            by_category[current].append(item)
    (details, *_rest) = by_category["visitor_accounts"]
    assert details["email"] == "li.na@example.com"
    assert details["phone"] == "+8613800138000"
    assert by_category["visitor_account_state"][0]["password"].startswith("a one-way")
    assert by_category["account_login_log"][0]["network"] == "127.0.0.0/24"
    assert len(by_category["visitor_sessions"]) == 1

    assert erase_person(person, reason="Asked through the rights portal on 2026-12-04")
    assert not Account.objects.exists()
    assert LoginRecord.objects.filter(person=person).count() == 1
