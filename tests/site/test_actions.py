"""A wrong CAPTCHA answer on a public form is recorded: which form, never who or what was typed."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from piwarden.audit.models import AuditEvent, EventType
from tests.conftest import consultation_data

pytestmark = pytest.mark.django_db


@pytest.mark.duty("SEC-02")
def test_a_wrong_captcha_answer_is_recorded_by_form(client):
    wrong = client.post("/en/consultation/", consultation_data(captcha_1="WRONG"))
    assert wrong.status_code == HTTPStatus.BAD_REQUEST
    [failed] = AuditEvent.objects.filter(event_type=EventType.CAPTCHA_FAILED)
    assert (failed.extra, failed.actor_kind, failed.person_id) == ({"form": "consultation"}, "visitor", None)
    assert "WRONG" not in str(failed.extra)


def test_other_mistakes_and_right_answers_are_not_captcha_failures(client):
    assert client.post("/en/consultation/", consultation_data(email="not an address")).status_code == 400
    assert client.post("/en/consultation/", consultation_data()).status_code == HTTPStatus.FOUND
    assert not AuditEvent.objects.filter(event_type=EventType.CAPTCHA_FAILED).exists()


@pytest.mark.duty("SEC-02")
def test_the_rights_portal_records_its_own(client):
    data = {"kind": "access", "email": "li.na@example.com", "captcha_0": "test-hashkey", "captcha_1": "WRONG"}
    assert client.post("/en/rights/", data).status_code == HTTPStatus.BAD_REQUEST
    [failed] = AuditEvent.objects.filter(event_type=EventType.CAPTCHA_FAILED)
    assert failed.extra == {"form": "rights"}
