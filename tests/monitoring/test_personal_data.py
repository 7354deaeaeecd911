"""A staff member's export holds the alerts about them and the notes they wrote, and nobody else's."""

from __future__ import annotations

import pytest
from django.utils import timezone

from piwarden.audit.models import EventType
from piwarden.monitoring.actions import run_monitor
from piwarden.monitoring.models import Alert
from piwarden.people.registry import Section, export_staff
from piwarden.policy.declaration import load_declaration
from tests.monitoring.events import at_prc, record

pytestmark = pytest.mark.django_db


def exported(user) -> list[dict]:
    items = list(export_staff(user, load_declaration()))
    start = next(
        i for i, item in enumerate(items) if isinstance(item, Section) and item.category == "staff_security_alerts"
    )
    rest = items[start + 1 :]
    end = next((i for i, item in enumerate(rest) if isinstance(item, Section)), len(rest))
    return rest[:end]


@pytest.mark.duty("RGT-02")
def test_alerts_about_a_staff_member_and_their_notes_are_in_their_export(alice, bob, carol, settings):
    settings.PIWARDEN_ALERT_REVEALS = 1
    record(EventType.PII_REVEALED, at_prc(2026, 12, 2, 10, 0), actor=alice, count=2)
    [alert_id] = run_monitor().alerts
    Alert.objects.filter(pk=alert_id).update(acknowledged_by=bob, acknowledged_at=timezone.now(), note="Looked into.")
    [about_alice] = exported(alice)
    assert (about_alice["alert"], about_alice["concerns_you"], about_alice["your_note"]) == (alert_id, True, None)
    [by_bob] = exported(bob)
    assert (by_bob["concerns_you"], by_bob["your_note"]) == (False, "Looked into.")
    assert exported(carol) == []
