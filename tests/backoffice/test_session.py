"""The staff session: TOTP is required on the console path, and it ends after the idle timeout.

TOTP: a session signed in with the password alone (``force_login`` through Django's
ModelBackend, i.e. any login path that skips the second factor) reaches no console page
that shows data, and leaves no trace of a read; the same staff signed in with their code
reach every one of them (the control).

Idle timeout: the session store's expiry is moved back, as the clock would move it, and
the console is asked again.  A session idle for just under ``PIWARDEN_STAFF_IDLE_SECONDS``
(README: 1800) stays signed in, and each request starts the idle time again; one idle for
just over it is sent to sign-in.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db.models import F
from django.test import Client

from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

IDLE = timedelta(seconds=int(os.environ.get("PIWARDEN_STAFF_IDLE_SECONDS", "1800")))
LOGIN = "/backoffice/login/"
REVEAL = {"purpose": "respond_inquiry", "field_names": ["name", "email"], "reason": "Calling back about the quote"}


@pytest.fixture
def canary(submit: Any) -> dict[str, str]:
    tag = uuid.uuid4().hex[:12]
    values = {"name": f"Canary Person {tag}", "email": f"canary-{tag}@example.com"}
    assert submit(**values).status_code == HTTPStatus.FOUND
    return values


@pytest.fixture
def reference(canary: dict[str, str]) -> str:
    return Inquiry.objects.get().reference


def sends_to_login(response: Any) -> bool:
    return response.status_code == HTTPStatus.FOUND and urlsplit(response["Location"]).path == LOGIN


def console_requests(reference: str) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """Every console page that shows data (or reveals it), as (method, url, body)."""
    detail = f"/backoffice/inquiries/{reference}/"
    return {
        "inbox": ("get", "/backoffice/", None),
        "detail": ("get", detail, None),
        "reveal": ("post", detail, REVEAL),
        "audit": ("get", "/backoffice/audit/", None),
    }


def ask(client: Client, method: str, url: str, body: dict[str, Any] | None) -> Any:
    return client.post(url, body) if method == "post" else client.get(url)


# --- TOTP on the console path ---------------------------------------------------------------


# Each view with the staff whose role may see it: alice (sales), bob (auditor).
PAGES = [("inbox", "alice"), ("detail", "alice"), ("reveal", "alice"), ("audit", "bob")]


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize(("view", "persona"), PAGES)
def test_a_password_only_session_is_sent_to_sign_in_from_every_data_page(
    request: pytest.FixtureRequest, canary: dict[str, str], reference: str, view: str, persona: str
) -> None:
    user = request.getfixturevalue(persona)
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    events_before = AuditEvent.objects.count()

    response = ask(client, *console_requests(reference)[view])

    assert sends_to_login(response), view
    body = response.content.decode()
    for value in canary.values():
        assert value not in body
    assert AuditEvent.objects.count() == events_before  # no reveal, no audit read happened


@pytest.mark.parametrize(("view", "persona"), PAGES)
def test_with_the_code_the_same_staff_reach_every_data_page(
    request: pytest.FixtureRequest, canary: dict[str, str], reference: str, view: str, persona: str
) -> None:
    user = request.getfixturevalue(persona)
    client = Client()
    assert sign_in(client, user).status_code == HTTPStatus.FOUND

    response = ask(client, *console_requests(reference)[view])

    assert response.status_code == HTTPStatus.OK
    if view == "reveal":
        assert canary["name"] in response.content.decode()


# --- idle timeout --------------------------------------------------------------------------------


def idle_for(elapsed: timedelta) -> None:
    """Let ``elapsed`` pass without a request: move the stored expiry back by as much."""
    assert Session.objects.filter(expire_date__isnull=False).update(expire_date=F("expire_date") - elapsed) == 1


@pytest.mark.duty("SEC-02")
def test_a_session_idle_for_longer_than_the_timeout_is_sent_to_sign_in(alice: User, reference: str) -> None:
    client = Client()
    assert sign_in(client, alice).status_code == HTTPStatus.FOUND
    assert client.get("/backoffice/").status_code == HTTPStatus.OK

    idle_for(IDLE - timedelta(minutes=1))
    assert client.get("/backoffice/").status_code == HTTPStatus.OK  # not idle long enough
    idle_for(IDLE - timedelta(minutes=1))
    # Signed in for nearly twice the timeout, but the last request was within it.
    assert client.get(f"/backoffice/inquiries/{reference}/").status_code == HTTPStatus.OK

    idle_for(IDLE + timedelta(seconds=1))
    assert sends_to_login(client.get("/backoffice/"))
    assert sends_to_login(client.post(f"/backoffice/inquiries/{reference}/", REVEAL))
    assert not AuditEvent.objects.filter(event_type="pii.revealed").exists()
