"""``piwarden demo``: synthetic people through the real encryption, for a demo or benchmark database.

It refuses without ``PIWARDEN_DEMO=on``; it writes the people and exactly the activity rows asked
for; none of the invented values is in the database in plaintext (every row searched, and on
SQLite the files' bytes); a demo person is found by their e-mail and exported like a real one;
the audit events it writes verify.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import AuditEvent
from piwarden.consent.models import ConsentRecord
from piwarden.demo.fill import person_values
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.rights.archive import build_archive
from piwarden.rights.models import RequestStep, RightsRequest, VerificationCode
from piwarden.vault import blind
from piwarden.vault.models import DataKey
from tests.commands import piwarden
from tests.vault.test_canary import assert_absent, assert_absent_from_every_row, read_if_present, sqlite_files

PERSONS, ACTIVITY = 10, 400


def demo(**options: object) -> str:
    out = io.StringIO()
    call_command("demo", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def activity_rows() -> int:
    person_events = AuditEvent.objects.filter(person__isnull=False).count()
    rows = (Inquiry, ConsentRecord, RightsRequest, RequestStep, VerificationCode, DBTaskResult)
    return person_events + sum(model.objects.count() for model in rows)


@pytest.mark.django_db(transaction=True)  # the command runs in a process of its own, on this database
def test_it_refuses_without_the_demo_setting():
    result = piwarden("demo", "--persons", "2")
    assert result.returncode != 0
    assert "PIWARDEN_DEMO=on" in result.stderr
    assert "never for production" in result.stderr
    assert not Person.objects.exists()


@pytest.mark.django_db
def test_it_refuses_in_process_too_and_checks_its_numbers(settings):
    settings.PIWARDEN_DEMO = False
    with pytest.raises(CommandError, match="PIWARDEN_DEMO=on"):
        demo(persons=2, workers=0)
    settings.PIWARDEN_DEMO = True
    with pytest.raises(CommandError, match="at least 5 per person"):
        demo(persons=10, activity=49, workers=0)
    assert not Person.objects.exists()


@pytest.mark.django_db
def test_it_writes_the_people_and_exactly_the_activity_asked_for(settings):
    settings.PIWARDEN_DEMO = True
    said = demo(persons=PERSONS, activity=ACTIVITY, workers=0, batch=3)
    assert f"Added {PERSONS} people and {ACTIVITY} activity rows" in said
    assert Person.objects.count() == PERSONS
    assert DataKey.objects.filter(person__isnull=False).count() == PERSONS
    assert activity_rows() == ACTIVITY
    for person in Person.objects.all():  # each has a consultation, its consent and its events
        assert Inquiry.objects.filter(person=person).exists()
        assert ConsentRecord.objects.filter(person=person).exists()
        assert AuditEvent.objects.filter(person=person, event_type="person.created").count() == 1
    assert RightsRequest.objects.filter(status="completed").exists()  # a few asked for their data
    assert RequestStep.objects.count() == 3 * RightsRequest.objects.count()
    # Another seed adds other people; the same seed again is refused before anything is written.
    with pytest.raises(CommandError, match=r"seed 1 .* already"):
        demo(persons=2, workers=0)
    demo(persons=2, seed=2, workers=0)
    assert Person.objects.count() == PERSONS + 2


@pytest.mark.django_db
def test_a_demo_person_is_found_by_their_email_and_exported_like_a_real_one(settings):
    settings.PIWARDEN_DEMO = True
    demo(persons=3, activity=60, workers=0)
    values = person_values(1, 2)
    person = Person.objects.get(email_index=blind.email_index(values["email"]))
    assert person.phone_index == blind.phone_index(values["phone"])
    inquiry = Inquiry.objects.filter(person=person).first()
    assert inquiry is not None
    assert (inquiry.name, inquiry.email, inquiry.company) == (values["name"], values["email"], values["company"])

    archive = build_archive(person, reference="DEMO-EXPORT")
    assert archive.status == "ready"
    assert archive.counts["consultation"] == Inquiry.objects.filter(person=person).count()
    assert archive.counts["consent_records"] == ConsentRecord.objects.filter(person=person).count()
    # The events the demo wrote, and the ones the archive's own build recorded just now.
    assert archive.counts["access_records"] == AuditEvent.objects.filter(person=person).count() - 1


@pytest.mark.django_db(transaction=True)
def test_no_invented_value_is_stored_in_plaintext_and_the_audit_log_verifies(settings, connection_vendor):
    settings.PIWARDEN_DEMO = True
    demo(persons=6, activity=90, workers=2, batch=2)  # two worker processes prepare, as on a big fill
    assert Person.objects.count() == 6
    assert activity_rows() == 90
    people = [person_values(1, number) for number in range(6)]
    # The control: the values are really there, decrypted through the model.
    assert {i.email for i in Inquiry.objects.all()} == {v["email"] for v in people}
    for values in people:
        canaries = {field: values[field] for field in ("name", "email", "company")}
        canaries["phone"] = values["phone"].removeprefix("+86")
        assert assert_absent_from_every_row(canaries) > 0
        if connection_vendor == "sqlite":
            written = b"".join(read_if_present(path) for path in sqlite_files())
            assert_absent(written, "the SQLite database, its -wal or -shm file", canaries)
    out = io.StringIO()
    call_command("audit", "verify", "--quiet", stdout=out)
    assert "intact" in out.getvalue().lower() or "ok" in out.getvalue().lower(), out.getvalue()


@pytest.fixture
def connection_vendor() -> str:
    from django.db import connection  # noqa: PLC0415

    return connection.vendor
