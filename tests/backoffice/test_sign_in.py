"""Staff sign-in as an attacker probes it: one answer for every failure, codes count, none replays.

Everything goes through the sign-in URL with the real form, django-axes and the authenticator
model; the assertions read what an attacker sees (the whole page) and what the lockout tables
keep.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
from axes.models import AccessAttempt
from django.apps import apps
from django.conf import settings
from django.db import models
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp

from piwarden.audit.models import AuditEvent
from piwarden.staff.models import Authenticator
from tests.conftest import STAFF_PASSWORD, current_code

pytestmark = pytest.mark.django_db

LOGIN = "/backoffice/login/"
_CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')


def code_at(user, steps_ahead: int) -> str:
    """The code of the time step ``steps_ahead`` from now (the server accepts -1, 0 and +1)."""
    device = Authenticator.objects.get(user=user)
    return f"{totp(device.bin_key, device.STEP, device.T0, device.DIGITS, device.drift + steps_ahead):06d}"


def wrong_code(user) -> str:
    valid = {code_at(user, s) for s in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(100_000, 1_000_000, 111_111)) if c not in valid)


def post(client: Client, username: str, password: str, code: str | None) -> object:
    data = {"username": username, "password": password}
    if code is not None:
        data["otp_token"] = code
    return client.post(LOGIN, data)


def page(response) -> bytes:
    """What the attacker reads, minus the per-request CSRF token."""
    return _CSRF.sub(b"", response.content)


def signed_in(client: Client) -> bool:
    return client.get("/backoffice/").status_code == HTTPStatus.OK


@pytest.mark.duty("SEC-01")
def test_a_right_password_with_a_wrong_code_reads_exactly_like_a_wrong_password(alice):
    wrong_password = post(Client(), "alice", "not the password at all", current_code(alice))
    wrong_code_only = post(Client(), "alice", STAFF_PASSWORD, wrong_code(alice))
    unknown_account = post(Client(), "alice", "not the password at all", wrong_code(alice))
    assert wrong_password.status_code == wrong_code_only.status_code == HTTPStatus.BAD_REQUEST
    assert unknown_account.status_code == HTTPStatus.BAD_REQUEST
    assert page(wrong_code_only) == page(wrong_password) == page(unknown_account)
    assert "用户名、密码或动态码不正确" in wrong_password.content.decode()  # and it says something useful


@pytest.mark.duty("SEC-01")
def test_a_missing_code_reads_the_same_whether_the_password_was_right_or_not(alice):
    right = post(Client(), "alice", STAFF_PASSWORD, None)
    wrong = post(Client(), "alice", "not the password at all", None)
    assert right.status_code == wrong.status_code == HTTPStatus.BAD_REQUEST
    assert page(right) == page(wrong)


def test_a_replayed_code_reads_like_a_wrong_password(client, alice):
    code = current_code(alice)
    assert post(client, "alice", STAFF_PASSWORD, code).status_code == HTTPStatus.FOUND
    client.post("/backoffice/logout/")
    replayed = post(Client(), "alice", STAFF_PASSWORD, code)
    wrong_password = post(Client(), "alice", "not the password at all", code)
    assert replayed.status_code == HTTPStatus.BAD_REQUEST
    assert page(replayed) == page(wrong_password)
    assert AuditEvent.objects.filter(event_type="staff.signed_in").count() == 1


def test_a_code_older_than_the_last_accepted_one_is_refused(client, alice):
    """django-otp's last_t: after the next step's code, the current step's code is spent too."""
    current, following = code_at(alice, 0), code_at(alice, 1)
    if current == following:  # one in a million: the two steps share a code
        pytest.skip("the current and next codes coincide")
    assert post(client, "alice", STAFF_PASSWORD, following).status_code == HTTPStatus.FOUND
    client.post("/backoffice/logout/")
    again = Client()
    assert post(again, "alice", STAFF_PASSWORD, current).status_code == HTTPStatus.BAD_REQUEST
    assert not signed_in(again)


@pytest.mark.duty("SEC-01")
def test_wrong_codes_count_towards_the_lockout_like_wrong_passwords(client, alice):
    limit = settings.AXES_FAILURE_LIMIT
    for attempt in range(limit):
        response = post(client, "alice", STAFF_PASSWORD, wrong_code(alice))
        last = attempt == limit - 1
        assert response.status_code == (HTTPStatus.TOO_MANY_REQUESTS if last else HTTPStatus.BAD_REQUEST)
    assert AccessAttempt.objects.get(username="alice").failures_since_start == limit
    # Now the right password with the right code is refused too, and the code is not even tried.
    code = current_code(alice)
    response = post(client, "alice", STAFF_PASSWORD, code)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert not signed_in(client)
    assert Authenticator.objects.get(user=alice).last_t == -1  # no code was ever accepted
    failed = AuditEvent.objects.filter(event_type="staff.sign_in_failed").order_by("id")
    assert [e.extra["failed_step"] for e in failed] == ["code"] * limit + ["password"]


def test_wrong_codes_and_wrong_passwords_add_up_to_one_lockout(client, alice):
    limit = settings.AXES_FAILURE_LIMIT
    for attempt in range(limit):
        password = STAFF_PASSWORD if attempt % 2 else "guess " + uuid.uuid4().hex
        post(client, "alice", password, wrong_code(alice))
    response = post(client, "alice", STAFF_PASSWORD, current_code(alice))
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert not signed_in(client)


def test_a_right_sign_in_after_wrong_codes_clears_the_count(client, alice):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        post(client, "alice", STAFF_PASSWORD, wrong_code(alice))
    # django-otp's own back-off (1 s, 2 s, 4 s, ... after successive failures) has run out by the
    # time a person retypes; move its clock back rather than wait.
    Authenticator.objects.filter(user=alice).update(throttling_failure_timestamp=timezone.now() - timedelta(hours=1))
    assert post(client, "alice", STAFF_PASSWORD, current_code(alice)).status_code == HTTPStatus.FOUND
    assert not AccessAttempt.objects.filter(username="alice").exists()


# --- what the lockout tables keep ------------------------------------------------------------------


def axes_texts() -> list[tuple[str, str]]:
    """Every text value the django-axes tables hold: (model, value)."""
    found = []
    for model in apps.get_app_config("axes").get_models():
        columns = [f.name for f in model._meta.concrete_fields if isinstance(f, models.CharField | models.TextField)]
        for row in model.objects.values_list(*columns):
            found += [(model.__name__, value) for value in row if value]
    return found


@pytest.mark.duty("SEC-01")
def test_the_lockout_tables_keep_no_code_and_no_password(alice):
    ok = Client()
    accepted = current_code(alice)
    assert post(ok, "alice", STAFF_PASSWORD, accepted).status_code == HTTPStatus.FOUND  # an access-log row
    guessed_password = "guess-" + uuid.uuid4().hex
    typed = [wrong_code(alice), code_at(alice, -1)]
    client = Client()
    post(client, "alice", guessed_password, typed[0])  # a wrong password
    post(client, "alice", STAFF_PASSWORD, typed[0])  # the right password, a wrong code
    post(client, "alice", STAFF_PASSWORD, typed[1])  # ... and a real but spent one
    attempt = AccessAttempt.objects.get(username="alice")
    assert attempt.failures_since_start == 3  # the control: the attempts are recorded
    assert "otp_token=" in attempt.post_data  # the field is named, its value is not kept
    texts = axes_texts()
    assert any(model == "AccessLog" for model, _ in texts)
    for model, value in texts:
        for secret in (guessed_password, STAFF_PASSWORD, *typed, accepted):
            assert secret not in value, f"axes' {model} keeps a submitted secret: {value!r}"
