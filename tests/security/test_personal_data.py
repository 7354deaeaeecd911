"""A person's security events in their copy, and kept through their erasure (the law's six months)."""

from __future__ import annotations

import pytest
from django.test import Client

from piwarden.people.actions import erase_person
from piwarden.people.models import Person
from piwarden.people.registry import Section, export_person
from piwarden.policy.declaration import load_declaration
from piwarden.security.models import SecurityEvent
from tests.conftest import consultation_data

pytestmark = pytest.mark.django_db

ADDRESS = "198.51.100.81"


@pytest.mark.duty("RGT-05")
@pytest.mark.duty("RET-04")
def test_the_persons_security_events_are_exported_and_kept_through_erasure():
    Client(REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT="Firefox/133.0").post("/en/consultation/", consultation_data())
    person = Person.objects.get()
    records: dict[str, list] = {}
    current = ""
    for item in export_person(person, load_declaration(), context="test.export"):
        if isinstance(item, Section):
            current = item.category
            records[current] = []
        else:
            records[current].append(item)
    [record] = records["security_events"]
    assert (record["kind"], record["ip_address"], record["user_agent"]) == ("consultation", ADDRESS, "Firefox/133.0")
    assert records["security_refusals"] == []  # a refusal is tied to no one

    erase_person(person, reason="Asked by phone on 2026-12-01")
    [event] = SecurityEvent.objects.all()
    assert event.address == ADDRESS  # sealed under the month's key, not the erased person's
