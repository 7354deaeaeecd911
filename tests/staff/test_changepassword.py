"""piwarden changepassword: Django's command replaced by one that ends the staff member's sessions
and records the change (the account, never the password) in the audit log."""

from __future__ import annotations

import io
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from piwarden.audit.models import AuditEvent
from tests.conftest import current_code, sign_in

NEW_PASSWORD = "another long passphrase 4 staff"


def change(tmp_path, username: str, password: str) -> str:
    secret = tmp_path / "new.pw"
    secret.write_text(password)
    out = io.StringIO()
    call_command("changepassword", username, password_file=secret, stdout=out)
    return out.getvalue()


@pytest.mark.duty("SEC-02")
def test_a_new_password_ends_the_sessions_and_is_recorded_without_the_password(alice, tmp_path, monkeypatch):
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    console = Client()
    assert sign_in(console, alice).status_code == HTTPStatus.FOUND
    assert console.get("/backoffice/").status_code == HTTPStatus.OK

    said = change(tmp_path, "alice", NEW_PASSWORD)

    assert "“alice”" in said
    assert "sessions have ended" in said
    assert console.get("/backoffice/").status_code == HTTPStatus.FOUND  # signed out: sent to sign in
    event = AuditEvent.objects.get(event_type="staff.password_changed")
    assert event.extra == {"username": "alice"}
    assert NEW_PASSWORD not in str(AuditEvent.objects.values_list())
    again = Client().post(
        "/backoffice/login/", {"username": "alice", "password": NEW_PASSWORD, "otp_token": current_code(alice)}
    )
    assert again.status_code == HTTPStatus.FOUND


@pytest.mark.parametrize(
    "case",
    [
        ("en_US.UTF-8", "nobody", NEW_PASSWORD, "No staff account is named “nobody”."),
        ("zh_CN.UTF-8", "nobody", NEW_PASSWORD, "没有名为“nobody”的员工账户。"),
        ("en_US.UTF-8", "alice", "alice", "Password rejected"),
        ("zh_CN.UTF-8", "alice", "12345678", "密码未被接受："),
    ],
)
def test_a_refused_change_says_why_in_the_operators_language_and_changes_nothing(alice, tmp_path, monkeypatch, case):
    lang, username, password, said = case
    monkeypatch.setenv("LANG", lang)
    before = User.objects.get(username="alice").password
    with pytest.raises(CommandError, match=said):
        change(tmp_path, username, password)
    assert User.objects.get(username="alice").password == before
    assert not AuditEvent.objects.filter(event_type="staff.password_changed").exists()
