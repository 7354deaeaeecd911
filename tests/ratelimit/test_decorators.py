"""A rate-limit refusal is recorded once per client and window, by scope, never by client; every
refused request of the window cites the same refusal's reference."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client

from piwarden.audit.models import AuditEvent, EventType
from piwarden.security.models import Refusal
from tests.conftest import consultation_data

pytestmark = pytest.mark.django_db


@pytest.mark.duty("SEC-02")
def test_the_first_refusal_of_a_window_is_recorded_and_the_next_ones_are_not(settings):
    settings.PIWARDEN_CONSULTATION_RATE = "2/d"  # one window for the whole test
    client = Client(REMOTE_ADDR="198.51.100.23")
    answers = [client.post("/en/consultation/", consultation_data()).status_code for _ in range(5)]
    assert answers == [HTTPStatus.FOUND] * 2 + [HTTPStatus.TOO_MANY_REQUESTS] * 3
    [refused] = AuditEvent.objects.filter(event_type=EventType.RATE_LIMITED)
    [refusal] = Refusal.objects.all()
    assert (refused.extra, refused.actor_kind, refused.person_id) == (
        {"scope": "consultation", "rule": "rate_limit", "refusal": refusal.reference},
        "visitor",
        None,
    )
    # Each refused request of the window shows that one reference.
    for _ in range(2):
        page = client.post("/en/consultation/", consultation_data())
        assert refusal.reference in page.content.decode()
    assert Refusal.objects.count() == 1
    # Another client's first refusal is its own entry.
    other = Client(REMOTE_ADDR="198.51.100.24")
    for _ in range(3):
        other.post("/en/consultation/", consultation_data())
    assert AuditEvent.objects.filter(event_type=EventType.RATE_LIMITED).count() == 2
    assert not AuditEvent.objects.filter(extra__icontains="198.51.100").exists()
