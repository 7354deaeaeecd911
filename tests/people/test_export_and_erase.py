"""A person's data, exported category by category and erased by the registry's erasers.

A person submits a consultation request through the real form (which gives a consent and writes
audit events) and the real worker sends the two e-mails into the sealed outbox.  The export
yields what they gave, decrypted, under one permit of the gate, and names every declared
category; erasure deletes their rows and mail, keeps and restricts what the law requires to
keep, and leaves none of their values, and none of their ciphertexts, anywhere in the database.
"""

from __future__ import annotations

import email
import email.policy
import inspect
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.cessation.models import Cessation, CessationNotice
from piwarden.children.models import ChildMark, MarkReason
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.people.actions import erase_person, restrict_processing
from piwarden.people.models import Person
from piwarden.people.registry import (
    EXPORT_PURPOSE,
    Section,
    Subject,
    erase_categories,
    export_person,
    export_staff,
    handlers,
    held_by,
)
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate
from piwarden.processing.gate import ProcessingRefused
from piwarden.retention.models import LegalHold
from piwarden.staff.models import Authenticator, Deactivation
from piwarden.vault import blind
from piwarden.vault.models import DataKey
from piwarden.vault.outbox import open_sealed, sealed_files
from tests.conftest import consultation_data
from tests.vault.test_canary import (
    assert_absent,
    assert_absent_from_every_row,
    canaries,
    read_if_present,
    sqlite_files,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def outbox(settings: Any, tmp_path: Path) -> Path:
    """The embedded sealed outbox, in a directory of this test's own."""
    directory = tmp_path / "outbox"
    settings.PIWARDEN_OUTBOX_DIR = directory
    settings.MAILERS = {
        "default": {"BACKEND": "piwarden.vault.outbox.SealedFileBackend", "OPTIONS": {"file_path": str(directory)}}
    }
    return directory


def seeded(client: Any, values: dict[str, str]) -> Person:
    response = client.post("/en/consultation/", consultation_data(**values))
    assert response.status_code == HTTPStatus.FOUND
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)
    return Person.objects.get(email_index=blind.email_index(values["email"]))


def inquiry_reference(person: Person) -> str:
    return Inquiry.objects.get(person=person).reference


def readable(raw: bytes) -> bytes:
    """A message's headers and decoded bodies (the bodies are base64 on the wire)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    bodies = [part.get_payload(decode=True) or b"" for part in message.walk() if not part.is_multipart()]
    return str(message["subject"]).encode() + str(message["to"]).encode() + b"".join(bodies)


def by_category(person: Person) -> dict[str, tuple[Section, list[Any]]]:
    found: dict[str, tuple[Section, list[Any]]] = {}
    current = ""
    for item in export_person(person, load_declaration(), context="test.export"):
        if isinstance(item, Section):
            current = item.category
            found[current] = (item, [])
        else:
            found[current][1].append(item)
    return found


def test_an_export_read_in_part_keeps_its_record_and_holds_no_transaction(client, outbox):
    person = seeded(client, canaries())
    stream = export_person(person, load_declaration(), context="test.export.partial")
    first = next(stream)
    assert isinstance(first, Section)
    # The consumer works outside any transaction (on SQLite: without holding the write lock) ...
    assert not connection.in_atomic_block
    stream.close()  # ... and stops early (a download cut off): what was read stays on record
    recorded = AuditEvent.objects.filter(event_type="processing.basis", person=person, purpose="answer_rights_request")
    assert [e.extra["context"] for e in recorded] == ["test.export.partial"]


@pytest.mark.duty("RGT-02")
def test_the_export_names_every_category_and_yields_what_the_person_gave(client, outbox):
    values = canaries()
    person = seeded(client, values)
    declaration = load_declaration()

    stream = export_person(person, declaration, context="test.export")
    assert inspect.isgenerator(stream)  # streamed: nothing is read before the first record is asked for
    stream.close()
    export = by_category(person)

    assert list(export) == [c.id for c in declaration.categories]  # complete, in the declaration's order
    (request,) = export["consultation"][1]
    given = {**values, "phone": "+86" + values["phone"]}  # the form stores the number in E.164
    assert {k: request[k] for k in values} == given  # decrypted: what the person gave
    assert request["region"] == "CN"
    assert request["industry"] == "finance"
    (consent,) = export["consent_records"][1]
    assert consent["purpose"] == "respond_inquiry"
    assert consent["withdrawn_at"] is None
    assert export["identifiers"][1] == [
        {"email_index": blind.email_index(values["email"]), "phone_index": person.phone_index}
    ]
    assert {"person.created", "inquiry.submitted", "consent.given"} <= {
        e["event_type"] for e in export["access_records"][1]
    }
    assert len(export["queued_tasks"][1]) == 2  # the acknowledgement and the sales notice
    (copy,) = export["outbox_copies"][1]  # the acknowledgement (the sales notice goes to sales)
    assert copy["to"] == values["email"]
    assert any(inquiry_reference(person) in text for text in copy["texts"])  # the body, decoded
    assert export["person_lifecycle"][1][0]["erased_at"] is None
    for category in ("staff_accounts", "sign_in_records"):
        section, records = export[category]
        assert section.subject is Subject.STAFF
        assert records == []
    section, records = export["rate_limit_counters"]
    assert section.subject is Subject.NOBODY
    assert "cannot be tied to anyone" in section.note
    assert records == []
    # The gate was asked, and its basis recorded (the consent-based purposes are not this one).
    event = AuditEvent.objects.filter(person=person, event_type="processing.basis").latest("seq")
    assert event.purpose == "answer_rights_request"
    assert event.extra["context"] == "test.export"


def exported_directly(person: Person, categories: set[str]) -> set[str]:
    """The categories among ``categories`` whose exporter, run by itself, yields any record."""
    found = handlers()
    with gate.processing(person, EXPORT_PURPOSE, categories=categories, use=gate.Use("test.held")) as permit:
        return {c for c in categories if any(True for _ in found[c].export(permit))}  # type: ignore[operator]


def test_a_category_looked_up_first_is_exported_exactly_when_the_person_holds_rows_of_it(client, outbox):
    probed = {c for c, h in handlers().items() if h.rows is not None}
    assert {"visitor_accounts", "download_history", "legal_holds", "child_protection_records"} <= probed
    person = seeded(client, canaries())

    # A typical person: what the look-up finds is what the exporters find, so skipping loses nothing.
    typical = held_by(person)
    assert typical == exported_directly(person, probed)
    assert "visitor_accounts" not in typical
    assert "security_events" in typical  # the consultation request's device and address

    # Rows in four categories more (the accounts, histories and notices are tested through the
    # export in their own apps): found by the look-up, and in the export's sections.
    now = timezone.now()
    LegalHold.objects.create(person=person, reason="Case 2026-3", ends_on=now.date(), placed_at=now)
    cessation = Cessation.objects.create(ceases_on=now.date(), reason="Closing", announced_at=now)
    CessationNotice.objects.create(cessation=cessation, person=person)
    ChildMark.objects.create(person=person, reason=MarkReason.FLAGGED)
    Inquiry.objects.filter(person=person).update(age_statement="")  # the mark alone finds the child records
    held = held_by(person)
    assert held == exported_directly(person, probed)
    assert {"legal_holds", "cessation_notices"} <= held - typical
    assert "child_protection_records" in held  # by the mark now, the age statement cleared
    export = by_category(person)
    assert export["legal_holds"][1][0]["reason"] == "Case 2026-3"
    assert export["cessation_notices"][1][0]["ceases_on"] == now.date().isoformat()
    assert export["child_protection_records"][1][0]["child_mark"] == MarkReason.FLAGGED
    assert export["visitor_accounts"] == (Section("visitor_accounts", Subject.VISITOR), [])  # named, empty


@pytest.mark.duty("RGT-05")
def test_erasure_deletes_the_rows_keeps_what_the_law_keeps_and_leaves_no_value(client, outbox):
    values = canaries()
    person = seeded(client, values)
    other = seeded(client, {**canaries(), "name": "Other Person"})
    inquiry = Inquiry.objects.get(person=person)
    ciphertexts = list(Inquiry.objects.filter(pk=inquiry.pk).values_list("name", "email", "phone", "company").get())
    events_before = AuditEvent.objects.filter(person=person).count()
    assert len(list(sealed_files(outbox))) == 4  # an acknowledgement and a sales notice each
    opened = [readable(open_sealed(f.path)).lower() for f in sealed_files(outbox)]
    assert any(values["email"].encode() in message for message in opened)  # the control: decoding finds it

    assert erase_person(person, reason="Asked through the rights portal today") is True

    assert not Inquiry.objects.filter(person=person).exists()
    assert not DBTaskResult.objects.filter(args_kwargs__args__0=str(inquiry.pk)).exists()
    consents = ConsentRecord.objects.filter(person=person)
    assert consents.count() == 1
    assert consents.get().withdrawn_at is not None
    assert AuditEvent.objects.filter(person=person).count() == events_before + 1  # kept, plus the erasure
    erased = Person.objects.get(pk=person.pk)
    assert erased.is_erased
    assert erased.email_index is None
    assert erased.phone_index is None
    assert DataKey.objects.get(pk=erased.data_key_id).is_destroyed
    shredded = AuditEvent.objects.get(person=person, event_type="person.shredded")
    # The acknowledgement (the sales notices remain), deleted by the category's eraser before the shredding.
    assert shredded.extra["erased"] == {
        "consultation": 1,
        "queued_tasks": 2,
        "consent_records": 1,
        "outbox_copies": 1,
        "rights_archives": 0,
        "visitor_accounts": 0,
        "visitor_account_state": 0,
        "visitor_sessions": 0,
        "guardian_contacts": 0,
        "child_protection_records": 1,  # the consultation request's age statement, cleared before the row goes
        "cessation_notices": 0,
        "policy_notices": 0,
        "download_history": 0,
        "browsing_history": 0,
    }
    assert shredded.extra["outbox_messages_deleted"] == 0
    assert len(list(sealed_files(outbox))) == 3
    assert Inquiry.objects.get(person=other).name == "Other Person"  # nobody else is touched
    assert verify_chain() is None

    # The canary: none of the person's values, and none of their ciphertexts, in any row.
    assert_absent_from_every_row(values)
    assert_absent_from_every_row({f"ciphertext{i}": bytes(c).hex() for i, c in enumerate(ciphertexts)})
    if connection.vendor == "sqlite":
        written = b"".join(read_if_present(path) for path in sqlite_files())
        assert_absent(written, "the SQLite database, its -wal or -shm file", values)
    for sealed in sealed_files(outbox):  # opened and decoded: what is left (sales notices) names none of it
        assert_absent(readable(open_sealed(sealed.path)), sealed.path.name, values)

    with pytest.raises(ProcessingRefused, match="erased"):
        next(export_person(erased, load_declaration(), context="test.export"))


def test_a_staff_members_own_data_is_exported_and_erased(alice):
    declaration = load_declaration()
    export = list(export_staff(alice, declaration))
    sections = [item.category for item in export if isinstance(item, Section)]
    assert sections == [c.id for c in declaration.categories if c.id.startswith(("staff_", "sign_in"))]
    account = next(item for item in export if not isinstance(item, Section) and "username" in item)
    assert account["username"] == "alice"
    assert account["roles"] == ["sales"]
    assert account["deactivated_at"] is None
    assert not any(
        "secret" in item and item["secret"] != "held encrypted; not exported (it signs you in)"
        for item in export
        if not isinstance(item, Section)
    )
    device = Authenticator.objects.get(user=alice)

    counts = erase_categories(alice, declaration, Subject.STAFF)

    assert counts["staff_accounts"] == 1
    assert counts["staff_authenticators"] + counts["staff_sign_in_state"] == 1
    alice.refresh_from_db()
    assert not alice.is_active
    assert Deactivation.objects.filter(user=alice).exists()  # the clock of the account's deletion runs
    assert not alice.has_usable_password()
    assert not Authenticator.objects.filter(user=alice).exists()
    assert DataKey.objects.get(pk=device.data_key_id).is_destroyed


@pytest.mark.duty("RGT-02")
def test_a_person_who_restricted_processing_still_receives_their_export(client, outbox):
    """Restriction stops processing, not the person's own access (the purpose survives restriction)."""
    values = canaries()
    person = seeded(client, values)
    assert restrict_processing(person, by=None, reference="R-TEST-1") is True

    export = by_category(person)

    (request,) = export["consultation"][1]
    assert request["email"] == values["email"]
    assert export["person_lifecycle"][1][0]["restricted_at"] is not None
