"""An erasure on request, as the operator runs it until the rights portal arrives (policy §三(二))."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.people.actions import erase_person
from piwarden.people.models import Person
from piwarden.vault import blind
from tests.conftest import consultation_data

pytestmark = [pytest.mark.django_db, pytest.mark.duty("RGT-05")]


def erase(*args: str) -> str:
    out = io.StringIO()
    call_command("erase_person", *args, stdout=out)
    return out.getvalue()


def test_an_erased_persons_request_is_gone_and_the_act_is_audited(submit):
    assert submit().status_code == 302
    assert submit(email="li.na@example.com", name="李娜").status_code == 302
    zhang = Inquiry.objects.get(person__email_index=blind.email_index("zhang.wei@example.com"))

    out = erase("--email", "Zhang.Wei@example.com", "--reason", "Asked by phone on 2026-12-01", "--yes")

    assert "Erased person" in out
    assert not Inquiry.objects.filter(pk=zhang.pk).exists()  # the request's rows are deleted
    person = Person.objects.get(pk=zhang.person_id)
    assert person.is_erased
    assert person.email_index is None
    event = AuditEvent.objects.get(event_type="person.shredded")
    assert event.person_id == person.pk
    assert event.reason == "Asked by phone on 2026-12-01"
    assert verify_chain() is None
    other = Inquiry.objects.exclude(pk=zhang.pk).get()
    assert other.name == "李娜"  # nobody else is touched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--email", "nobody@example.com", "--reason", "Asked by phone today", "--yes"), "No one with that"),
        (("--email", consultation_data()["email"], "--reason", "short", "--yes"), "at least 10 characters"),
        (("--email", consultation_data()["email"], "--reason", "x" * 501, "--yes"), "at most 500 characters"),
        (("--email", consultation_data()["email"], "--reason", "Asked by phone today"), "No terminal to confirm"),
    ],
)
def test_a_refused_erasure_says_why_and_changes_nothing(submit, args, message):
    assert submit().status_code == 302
    with pytest.raises(CommandError, match=message):
        erase(*args)
    assert not Person.objects.filter(erased_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(event_type="person.shredded").exists()


def test_erasing_twice_erases_and_records_once(submit):
    """The write path itself, as the rights portal will call it: a second call finds nothing to do."""
    assert submit().status_code == 302
    person = Person.objects.get()

    assert erase_person(person, reason="Asked by phone on 2026-12-01") is True
    assert erase_person(person, reason="Asked again by e-mail") is False

    assert AuditEvent.objects.filter(event_type="person.shredded").count() == 1
    assert Person.objects.get().is_erased


def test_staff_erasing_on_a_request_are_recorded_with_its_reference(submit, carol):
    """As the rights queue calls it: the acting staff member and the request's reference join the event."""
    assert submit().status_code == 302
    assert erase_person(Person.objects.get(), reason="Rights request R-2026-0200", by=carol, reference="R-2026-0200")
    event = AuditEvent.objects.get(event_type="person.shredded")
    assert (event.actor_id, event.actor_kind, event.extra["reference"]) == (carol.pk, "staff", "R-2026-0200")
