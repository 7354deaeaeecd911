"""A person's incident notices are in their copy of their data, and an erasure keeps the record
that the duty to notify was met (it holds no value of theirs)."""

from __future__ import annotations

import pytest

from piwarden.incidents.actions import notify_persons
from piwarden.incidents.models import Notice
from piwarden.people.actions import erase_person
from piwarden.people.models import Person
from piwarden.people.registry import Section, export_person
from piwarden.policy.declaration import load_declaration
from piwarden.vault import blind
from tests.incidents.console import consulted, deliver
from tests.incidents.making import acting, ready_to_notify

pytestmark = pytest.mark.django_db


@pytest.mark.duty("SEC-05")
def test_the_notice_is_in_the_persons_export_and_survives_their_erasure(carol, smtp):
    consulted("f.six@example.com")
    person = Person.objects.get(email_index=blind.email_index("f.six@example.com"))
    officer = acting(carol)
    incident = ready_to_notify(officer)
    notify_persons(officer, incident.slug, by_categories=True, addresses=[])
    deliver()
    items = list(export_person(person, load_declaration(), context="test"))
    at = next(i for i, item in enumerate(items) if isinstance(item, Section) and item.category == "incident_notices")
    record = items[at + 1]
    assert not isinstance(record, Section)
    assert (record["incident"], record["recipient"], record["outcome"]) == (incident.slug, "person", "sent")
    assert "f.six@example.com" not in str(record)
    erase_person(person, reason="The person asked us to delete everything about them.")
    assert Notice.objects.filter(person=person, outcome="sent").count() == 1
