"""Visitor sessions and staff sessions cannot be taken for each other."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

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


@pytest.mark.parametrize("page", ["/en/", "/en/downloads/"])
def test_a_signed_in_page_reads_the_session_its_account_and_person_in_one_statement(settings, page):
    """The page-view recorder (and the downloads pages) ask who is signed in on every public page:
    the session's look-up brings the account and the Person, so no page reads either again."""
    settings.CAPTCHA_TEST_MODE = True
    visitor = Client()
    open_account(visitor)
    signed_in(visitor)

    with CaptureQueriesContext(connection) as reading:
        response = visitor.get(page)
    assert response.status_code == HTTPStatus.OK
    sent = [q["sql"] for q in reading.captured_queries]

    sessions = [sql for sql in sent if 'FROM "accounts_accountsession"' in sql]
    assert len(sessions) == 1, sent
    assert '"people_person"' in sessions[0]  # joined: the account and its person come with the session
    again = ('FROM "people_person"', 'FROM "accounts_account" ')
    assert [sql for sql in sent if sql.startswith("SELECT") and any(table in sql for table in again)] == []
