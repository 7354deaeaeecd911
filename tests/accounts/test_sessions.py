"""Visitor sessions and staff sessions cannot be taken for each other."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client

from piwarden.accounts.models import AccountSession
from tests.accounts.helpers import open_account, signed_in
from tests.conftest import make_staff, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_visitor_session_opens_no_console_page_and_a_staff_session_no_account_page(settings, tmp_path):
    settings.CAPTCHA_TEST_MODE = True
    visitor = Client()
    open_account(visitor)
    signed_in(visitor)
    assert visitor.get("/backoffice/")["Location"].startswith("/backoffice/login/")
    staff = Client()
    assert sign_in(staff, make_staff("session-sales", "sales", tmp_path)).status_code == HTTPStatus.FOUND
    assert staff.get("/en/account/")["Location"] == "/en/account/sign-in/"
    # A staff session's cookie given as the visitor cookie is no session either.
    staff.cookies["piwarden_account"] = staff.cookies["sessionid"].value
    assert staff.get("/en/account/")["Location"] == "/en/account/sign-in/"
    # The visitor's token is stored only as its digest.
    token = visitor.cookies["piwarden_account"].value
    assert not AccountSession.objects.filter(digest=token).exists()


def test_another_visitor_sees_only_their_own_account(settings):
    settings.CAPTCHA_TEST_MODE = True
    a, b = Client(), Client()
    open_account(a)
    open_account(b, email="wang.fang@example.com")
    signed_in(a)
    signed_in(b, email="wang.fang@example.com")
    page_b = b.get("/en/account/").content.decode()
    assert "wang.fang@example.com" in page_b
    assert "li.na@example.com" not in page_b
