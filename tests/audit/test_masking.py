"""The audit log never keeps a secret, whatever a caller puts in ``extra`` (pretix's LoggingMixin rule).

``record_event`` is the one way into the log, so it is the interface: each case records one
event and reads the stored row back.  Secret-looking keys are masked whatever their case,
however deep they sit (a caller may log a form or a request body whole), and whatever word
they are joined to (``otp_token`` is the staff sign-in form's own field name).  Names of
keys that are not secrets (``primary_key_id``, a key's id) stay readable.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from piwarden.audit.chain import seal
from piwarden.audit.log import EventType, record_event, verify_chain
from piwarden.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

SECRET = "hunter2-0f9e8d"  # a value that must not survive anywhere in the row
MASK = "***"

SECRET_KEYS = [
    "password",
    "secret",
    "token",
    "otp",
    "key",
    "api_key",
    "PASSWORD",
    "Password",
    "API_KEY",
    "Api_Key",
    "Token",
    "OTP",
    "otp_token",
    "new_password",
    "password1",
    "access_token",
    "client_secret",
    "private_key",
    "apiKey",
    "otpToken",
    "newPassword",
]

NOT_SECRET = {
    "primary_key_id": 1234,
    "inquiry": "AB12CD34EF",
    "records": 2,
    "keyword": "pricing",
    "monkey": "no",
    "primaryKeyId": 7,
}


def stored(extra: dict[str, Any]) -> AuditEvent:
    with transaction.atomic():
        record_event(EventType.STAFF_SIGN_IN_FAILED, purpose="security", extra=extra)
    return AuditEvent.objects.latest("id")


def row_text(event: AuditEvent) -> str:
    return " ".join(str(v) for v in AuditEvent.objects.filter(pk=event.pk).values_list().get())


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize("key", SECRET_KEYS)
def test_a_secret_looking_key_is_masked(key: str) -> None:
    event = stored({key: SECRET, "inquiry": "AB12CD34EF"})
    assert event.extra == {key: MASK, "inquiry": "AB12CD34EF"}
    assert SECRET not in row_text(event)
    assert verify_chain() is None  # the digest covers what was stored, the mask included
    seal()
    assert verify_chain() is None  # and so does the chain


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize("key", ["password", "Token", "otp_token", "api_key"])
def test_a_secret_nested_in_a_dict_or_a_list_is_masked(key: str) -> None:
    extra = {
        "form": {"username": "alice", key: SECRET},
        "attempts": [{"at": "09:00", key: SECRET}, {"at": "09:01", "detail": {key: SECRET}}],
    }
    event = stored(extra)
    assert event.extra == {
        "form": {"username": "alice", key: MASK},
        "attempts": [{"at": "09:00", key: MASK}, {"at": "09:01", "detail": {key: MASK}}],
    }
    assert SECRET not in row_text(event)


@pytest.mark.duty("SEC-01")
def test_a_secret_key_holding_a_structure_is_masked_whole() -> None:
    event = stored({"secret": {"value": SECRET, "parts": [SECRET]}})
    assert event.extra == {"secret": MASK}
    assert SECRET not in row_text(event)


def test_keys_that_only_look_alike_stay_readable() -> None:
    assert stored(NOT_SECRET).extra == NOT_SECRET


def test_masking_does_not_change_the_callers_dict() -> None:
    extra = {"password": SECRET, "form": {"token": SECRET}}
    stored(extra)
    assert extra == {"password": SECRET, "form": {"token": SECRET}}
