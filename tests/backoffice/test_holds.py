"""The privacy officer places and lifts legal holds in the console; both are audited."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.retention.models import LegalHold
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


@pytest.mark.duty("RET-02")
def test_the_privacy_officer_places_a_hold_on_a_person_and_lifts_it(client: Client, carol, submit):
    assert submit().status_code == 302
    person = Inquiry.objects.get().person
    assert sign_in(client, carol).status_code == 302
    until = (timezone.now() + datetime.timedelta(days=60)).date()

    page = client.get("/backoffice/holds/")
    assert page.status_code == 200
    assert "No legal hold has been placed." in page.content.decode() or "尚未设立" in page.content.decode()

    placed = client.post(
        "/backoffice/holds/",
        {"person": person.reference, "reason": "Court order 2026-88", "ends_on": until.isoformat()},
    )
    assert placed.status_code == 302
    hold = LegalHold.objects.get()
    assert hold.person_id == person.pk
    assert hold.ends_on == until
    assert hold.placed_by == carol
    listing = client.get(placed["Location"]).content.decode()
    assert person.reference in listing
    assert "Court order 2026-88" in listing

    lifted = client.post(f"/backoffice/holds/{hold.pk}/lift/", {"reason": "The court lifted its order"})
    assert lifted.status_code == 302
    hold.refresh_from_db()
    assert hold.lifted_at is not None
    assert hold.lifted_by == carol
    [event] = AuditEvent.objects.filter(event_type="retention.hold_lifted")
    assert event.reason == "The court lifted its order"
    assert event.actor_id == carol.pk
    assert AuditEvent.objects.filter(event_type="retention.hold_placed", person_id=person.pk).count() == 1


def test_bad_input_places_nothing_and_says_why(client: Client, carol):
    assert sign_in(client, carol).status_code == 302
    tomorrow = (timezone.now() + datetime.timedelta(days=1)).date().isoformat()
    both = client.post(
        "/backoffice/holds/",
        {"person": "0123456789", "category": "consultation", "reason": "Court order 2026-88", "ends_on": tomorrow},
    )
    assert both.status_code == 400
    unknown = client.post(
        "/backoffice/holds/", {"person": "0123456789", "reason": "Court order 2026-88", "ends_on": tomorrow}
    )
    assert unknown.status_code == 400
    past = client.post(
        "/backoffice/holds/", {"category": "consultation", "reason": "Court order 2026-88", "ends_on": "2020-01-01"}
    )
    assert past.status_code == 400
    assert not LegalHold.objects.exists()
    placed = client.post(
        "/backoffice/holds/", {"category": "consultation", "reason": "Regulator inquiry 2026-4", "ends_on": tomorrow}
    )
    assert placed.status_code == 302
    assert LegalHold.objects.get().category == "consultation"
