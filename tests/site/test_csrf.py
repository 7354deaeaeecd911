"""CSRF protection on the consultation POST, asserted directly (SEC-01).

A browser that holds the site's CSRF cookie but posts a complete, valid consultation
without the form's token (what another site's auto-submitting form produces) is refused
with 403, and nothing is stored: no person, no consent, no request, no audit event, nothing
queued.  The same body with the token goes through, so the refusal is the token's doing.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import AuditEvent
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.vault.models import DataKey
from tests.conftest import consultation_data

pytestmark = pytest.mark.django_db

MODELS = (Person, ConsentRecord, Inquiry, AuditEvent, DataKey, DBTaskResult)


def stored() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def form_token(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == HTTPStatus.OK
    assert "csrftoken" in client.cookies  # the browser does hold the cookie
    return page.content.decode().split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize("url", ["/consultation/", "/en/consultation/"])
@pytest.mark.parametrize("token", [None, "forged-" + "x" * 57], ids=["no-token", "forged-token"])
def test_a_consultation_without_the_forms_token_is_refused_and_nothing_is_stored(url: str, token: str | None) -> None:
    client = Client(enforce_csrf_checks=True)
    form_token(client, url)
    body = consultation_data()
    if token is not None:
        body["csrfmiddlewaretoken"] = token

    response = client.post(url, body)

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert body["email"] not in response.content.decode()
    assert stored() == dict.fromkeys(stored(), 0)


@pytest.mark.parametrize("url", ["/consultation/", "/en/consultation/"])
def test_the_same_consultation_with_the_token_is_stored(url: str) -> None:
    client = Client(enforce_csrf_checks=True)
    token = form_token(client, url)

    response = client.post(url, {**consultation_data(), "csrfmiddlewaretoken": token})

    assert response.status_code == HTTPStatus.FOUND
    assert Inquiry.objects.count() == 1
