"""Withdrawal of consent that executes (PIPL 15, 47(1)(3); policy §六 "we stop the processing concerned
and delete the information; where the law requires us to keep it, we only store it").

张伟 submits a consultation request through the form (his consent is given there) and the real worker
sends the acknowledgement into the sealed outbox.  He withdraws: the gate refuses every use for the
purpose from then on, what was held on that consent alone is deleted (the request, the background jobs
about it, the copy of the e-mail), what rests on another basis stays (the consent record, marked
withdrawn, proves the earlier processing lawful; the look-up digests and timestamps), and the audit
event counts, never quotes.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.people.actions import held_only_on, withdraw
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate
from piwarden.vault import blind
from piwarden.vault.outbox import sealed_files
from tests.conftest import consultation_data
from tests.vault.test_canary import assert_absent_from_every_row, canaries

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("CON-04"), pytest.mark.duty("RET-02")]

PURPOSE = "respond_inquiry"
REFERENCE = "R-2026-0077"


@pytest.fixture
def outbox(settings: Any, tmp_path: Path) -> Path:
    directory = tmp_path / "outbox"
    settings.PIWARDEN_OUTBOX_DIR = directory
    settings.MAILERS = {
        "default": {"BACKEND": "piwarden.vault.outbox.SealedFileBackend", "OPTIONS": {"file_path": str(directory)}}
    }
    return directory


def test_the_declaration_says_what_rests_on_the_consent_alone():
    only, kept = held_only_on(load_declaration(), PURPOSE)
    assert only == ["consultation", "queued_tasks", "outbox_copies"]
    assert kept == ["identifiers", "person_lifecycle"]  # also serve proving consent (a legal duty)


def test_withdrawal_stops_the_processing_deletes_what_rested_on_it_and_keeps_the_proof(client, outbox):
    values = canaries()
    assert client.post("/en/consultation/", consultation_data(**values)).status_code == HTTPStatus.FOUND
    other = {"email": "li.na@example.com", "name": "李娜", "phone": "13900139000"}
    assert client.post("/en/consultation/", consultation_data(**other)).status_code == HTTPStatus.FOUND
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)
    zhang = Person.objects.get(email_index=blind.email_index(values["email"]))
    request = Inquiry.objects.get(person=zhang)
    assert len(list(sealed_files(outbox))) == 4  # two acknowledgements, two sales notices
    indexes = (zhang.email_index, zhang.phone_index)

    done = withdraw(zhang, PURPOSE, channel="rights:portal", reference=REFERENCE)

    assert done.records == 1
    assert done.deleted == {"outbox_copies": 1, "queued_tasks": 2, "consultation": 1}
    assert done.kept == ["identifiers", "person_lifecycle"]
    assert not Inquiry.objects.filter(person=zhang).exists()
    assert not DBTaskResult.objects.filter(args_kwargs__args__0=str(request.pk)).exists()
    assert DBTaskResult.objects.count() == 2  # 李娜's
    assert len(list(sealed_files(outbox))) == 3  # his acknowledgement only
    # What rests on another basis stays: the consent record (marked withdrawn), his look-up digests.
    record = ConsentRecord.objects.get(person=zhang)
    assert record.withdrawn_at is not None
    assert record.shown_text  # what he agreed to, kept as proof that the earlier processing was lawful
    kept = Person.objects.get(pk=zhang.pk)
    assert (kept.email_index, kept.phone_index) == indexes
    assert not kept.is_erased
    # Nobody else is touched.
    assert Inquiry.objects.get().name == "李娜"
    assert ConsentRecord.objects.filter(withdrawn_at__isnull=True).count() == 1

    # The processing concerned stops: the gate finds no active consent.
    use = gate.processing(kept, PURPOSE, categories={"consultation"}, use=gate.Use("test.after_withdrawal"))
    with pytest.raises(gate.ProcessingRefused, match="no active consent"), use:
        pass

    event = AuditEvent.objects.get(event_type="consent.withdrawn")
    assert (event.person_id, event.purpose) == (zhang.pk, PURPOSE)
    assert event.extra == {
        "channel": "rights:portal",
        "records": 1,
        "reference": REFERENCE,
        "deleted": {"outbox_copies": 1, "queued_tasks": 2, "consultation": 1},
        "kept": ["identifiers", "person_lifecycle"],
    }
    assert verify_chain() is None
    assert_absent_from_every_row(values)

    # A second withdrawal finds nothing to do and records nothing.
    again = withdraw(zhang, PURPOSE, channel="rights:portal", reference=REFERENCE)
    assert (again.records, sum(again.deleted.values())) == (0, 0)
    assert AuditEvent.objects.filter(event_type="consent.withdrawn").count() == 1


def test_a_new_request_after_withdrawal_asks_for_consent_again(client, outbox):
    """Withdrawal is no ban: the form gives a new consent, and the request is answered again (CON-05)."""
    assert client.post("/en/consultation/", consultation_data()).status_code == HTTPStatus.FOUND
    person = Person.objects.get()
    withdraw(person, PURPOSE, channel="rights:portal", reference=REFERENCE)

    assert client.post("/en/consultation/", consultation_data()).status_code == HTTPStatus.FOUND

    assert Person.objects.get().pk == person.pk
    assert ConsentRecord.objects.filter(person=person, withdrawn_at__isnull=True).count() == 1
    with gate.processing(person, PURPOSE, categories={"consultation"}, use=gate.Use("test.reconsented")):
        pass


@pytest.mark.parametrize(
    ("purpose", "message"),
    [("security", "does not rest on consent"), ("marketing", "is not a purpose of the privacy policy")],
)
def test_only_a_consent_can_be_withdrawn_and_nothing_changes_otherwise(client, purpose, message):
    assert client.post("/en/consultation/", consultation_data()).status_code == HTTPStatus.FOUND
    person = Person.objects.get()
    with pytest.raises(ValueError, match=message):
        withdraw(person, purpose, channel="rights:portal", reference=REFERENCE)
    assert Inquiry.objects.count() == 1
    assert ConsentRecord.objects.get().withdrawn_at is None
    assert not AuditEvent.objects.filter(event_type="consent.withdrawn").exists()
