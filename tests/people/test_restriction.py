"""Restriction of processing (PIPL 44; policy §六): set by the person's request or by staff, obeyed by the
gate, lifted only with a reason, every step audited.

End to end: 王芳 submits a consultation request through the form, restricts processing before the worker
runs, and the worker (with a real SMTP server) mails her nothing: the gate refuses the queued
acknowledgement.  Her data is still stored, and the purposes that survive a restriction (proving her
consent, answering her requests) still run.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.people.actions import erase_person, lift_restriction, restrict_processing
from piwarden.people.models import Person
from piwarden.people.registry import Section, export_person
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate
from tests.conftest import consultation_data
from tests.inquiries.test_mail import PEOPLE, run_worker, submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("RGT-01")]

REFERENCE = "R-2026-0042"


def test_a_restricted_persons_queued_mail_is_refused_by_the_gate_and_her_data_stays_stored(smtp, settings):
    wang = PEOPLE["zh-hans"]
    inquiry = submit("zh-hans")

    assert restrict_processing(inquiry.person, by=None, reference=REFERENCE) is True
    run_worker()

    assert smtp.collector.to(wang["email"]) == []  # the acknowledgement was refused
    assert len(smtp.collector.to(settings.PIWARDEN_SALES_EMAIL)) == 1  # the notice holds nothing of hers
    refusal = AuditEvent.objects.get(event_type="processing.refused", person=inquiry.person)
    assert refusal.extra["refusal"] == "the person has restricted processing of their data"
    assert Inquiry.objects.get(pk=inquiry.pk).acknowledged_at is None

    # Storage: her request is kept, readable for the purposes that survive a restriction.
    person = Person.objects.get(pk=inquiry.person_id)
    export = list(export_person(person, load_declaration(), context="test.rights"))
    (request,) = [item for item in export if not isinstance(item, Section) and "reference" in item]
    assert request["email"] == wang["email"]
    with gate.processing(person, "consent_evidence", categories={"consent_records"}, use=gate.Use("test")):
        pass  # proving her consent goes on
    answering = gate.processing(person, "respond_inquiry", categories={"consultation"}, use=gate.Use("test"))
    with pytest.raises(gate.ProcessingRefused, match="restricted"), answering:
        pass  # answering her consultation does not

    event = AuditEvent.objects.get(event_type="person.restricted")
    assert (event.person_id, event.actor_kind, event.actor_id) == (person.pk, "visitor", None)
    assert event.extra == {"reference": REFERENCE}
    assert verify_chain() is None


def test_lifting_needs_a_reason_and_is_audited_then_processing_resumes(smtp, carol):
    inquiry = submit("zh-hans")
    person = inquiry.person
    assert restrict_processing(person, by=carol, reference=REFERENCE) is True
    assert restrict_processing(person, by=carol, reference=REFERENCE) is False  # once
    assert AuditEvent.objects.filter(event_type="person.restricted").count() == 1

    with pytest.raises(ValueError, match="at least 10 characters"):
        lift_restriction(person, by=carol, reason="because")
    assert Person.objects.get(pk=person.pk).is_restricted  # nothing changed
    assert not AuditEvent.objects.filter(event_type="person.restriction_lifted").exists()

    assert lift_restriction(person, by=carol, reason="The person asked by phone to lift it") is True
    assert lift_restriction(person, by=carol, reason="The person asked by phone to lift it") is False

    lifted = AuditEvent.objects.get(event_type="person.restriction_lifted")
    assert (lifted.actor_id, lifted.actor_kind, lifted.reason) == (
        carol.pk,
        "staff",
        "The person asked by phone to lift it",
    )
    assert "restricted_since" in lifted.extra
    run_worker()
    assert len(smtp.collector.to(PEOPLE["zh-hans"]["email"])) == 1  # the acknowledgement goes out now


def test_an_erased_person_is_not_restricted(client):
    assert client.post("/en/consultation/", consultation_data()).status_code == 302
    person = Person.objects.get()
    erase_person(person, reason="Asked by phone on 2026-12-01")
    assert restrict_processing(person, by=None, reference=REFERENCE) is False
    assert not AuditEvent.objects.filter(event_type="person.restricted").exists()


def people_command(*args: str) -> str:
    out = io.StringIO()
    call_command("people", *args, stdout=out)
    return out.getvalue()


def test_the_operator_restricts_and_lifts_by_the_persons_reference(client, carol):
    assert client.post("/en/consultation/", consultation_data()).status_code == 302
    person = Person.objects.get()

    out = people_command("restrict", person.reference.lower(), "--request", REFERENCE, "--by", "carol")
    assert f"Restricted the processing of person {person.reference}" in out
    assert Person.objects.get().is_restricted
    assert AuditEvent.objects.get(event_type="person.restricted").actor_id == carol.pk

    with pytest.raises(CommandError, match="at least 10 characters"):
        people_command("lift", person.reference, "--reason", "short", "--by", "carol")
    assert "Lifted the restriction" in people_command(
        "lift", person.reference, "--reason", "Request R-2026-0043 to lift", "--by", "carol"
    )
    assert not Person.objects.get().is_restricted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("restrict", "XYZ", "--request", REFERENCE, "--by", "carol"), "is not a person's reference"),
        (("restrict", "ABCDEF0123", "--request", REFERENCE, "--by", "carol"), "No person has the reference"),
        (("restrict", "ABCDEF0123", "--request", REFERENCE, "--by", "nobody"), "No active staff account"),
    ],
)
def test_the_command_refuses_bad_input_and_changes_nothing(carol, args, message):
    with pytest.raises(CommandError, match=message):
        people_command(*args)
    assert not AuditEvent.objects.filter(event_type="person.restricted").exists()
