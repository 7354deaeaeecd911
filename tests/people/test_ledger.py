"""The erasure ledger (invariant 6: an erasure is completed exactly once and survives a backup restore).

The ledger itself: a hash chain over its lines, fsync'd, apart from the database, written inside
the erasure's transaction (no ledger, no erasure).  Then the restore: a person is erased, the
database is put back to a copy taken before (SQLite: the backup API, both ways; PostgreSQL: the
rows copied back), the person is readable again and start-up says so; `piwarden retention
replay-erasures` erases them again, and neither their values nor their ciphertexts nor their
wrapped data key are left in the database.
"""

from __future__ import annotations

import io
import json
import sqlite3
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.people import ledger
from piwarden.people.actions import erase_person
from piwarden.people.checks import check_erasure_ledger
from piwarden.people.models import Person
from piwarden.vault import blind
from piwarden.vault.crypto import forget_cached_keys
from piwarden.vault.models import DataKey
from tests.commands import piwarden
from tests.conftest import consultation_data
from tests.vault.test_canary import assert_absent, assert_absent_from_every_row, canaries, read_if_present, sqlite_files

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("RGT-05")]

REASON = "Asked by phone on 2026-12-01"


@pytest.fixture
def ledger_file(settings: Any, tmp_path: Path) -> Path:
    settings.PIWARDEN_ERASURE_LEDGER = tmp_path / "ledger" / "erasures.ledger"
    return settings.PIWARDEN_ERASURE_LEDGER


def replay(*args: str) -> str:
    out = io.StringIO()
    call_command("retention", "replay-erasures", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# -- the file ----------------------------------------------------------------------------------


def _append(n: int) -> list[ledger.Entry]:
    return [ledger.append(uuid.uuid4(), uuid.uuid4(), datetime.now(tz=UTC)) for _ in range(n)]


def test_entries_are_chained_and_read_back(ledger_file):
    written = _append(3)
    assert list(ledger.entries()) == written
    assert [e.seq for e in written] == [1, 2, 3]
    assert written[1].prev == written[0].hash
    assert ledger_file.stat().st_mode & 0o777 == 0o600


def test_erasures_appended_together_continue_the_chain(ledger_file):
    """A batch of the sweep appends its erasures in one write: the same chain as one at a time."""
    first = _append(1)
    now = datetime.now(tz=UTC)
    together = ledger.append_many([(uuid.uuid4(), uuid.uuid4(), now) for _ in range(3)])
    last = _append(1)
    assert [e.seq for e in together] == [2, 3, 4]
    assert together[0].prev == first[0].hash
    assert last[0].prev == together[-1].hash
    assert list(ledger.entries()) == first + together + last


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda lines: [lines[0], lines[1].replace('"erased_at":"2', '"erased_at":"1'), lines[2]], "line 2 was"),
        (lambda lines: [lines[0], lines[2]], "line 2 carries number 3"),
        (lambda lines: [lines[1], lines[0], lines[2]], "line 1 carries number 2"),
        (
            lambda lines: [lines[0], lines[1].replace(json.loads(lines[1])["person"], str(uuid.uuid4())), lines[2]],
            "line 2 was changed",
        ),
        (lambda lines: [lines[0], "not json\n", lines[2]], "line 2 is not a ledger entry"),
    ],
)
def test_an_edited_reordered_or_shortened_ledger_is_detected(ledger_file, damage, message):
    _append(3)
    lines = ledger_file.read_text().splitlines(keepends=True)
    ledger_file.write_text("".join(damage(lines)))
    with pytest.raises(ledger.LedgerDamaged, match=message):
        list(ledger.entries())
    assert "is damaged" in (ledger.warning() or "")


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_append(ledger_file):
    """A crash during an append: its transaction never committed, so the torn line is no erasure."""
    first = _append(1)[0]
    with ledger_file.open("ab") as handle:
        handle.write(b'{"seq":2,"person":"')
    assert list(ledger.entries()) == [first]
    second = _append(1)[0]
    assert second.seq == 2
    assert list(ledger.entries()) == [first, second]


def test_an_erasure_is_written_to_the_ledger_and_the_ledger_holds_no_personal_value(client, ledger_file):
    values = canaries()
    assert client.post("/en/consultation/", consultation_data(**values)).status_code == HTTPStatus.FOUND
    person = Person.objects.get()

    assert erase_person(person, reason=REASON) is True

    (entry,) = ledger.entries()
    assert (entry.person, entry.data_key) == (person.pk, person.data_key_id)
    assert entry.erased_at == Person.objects.get().erased_at
    assert_absent(ledger_file.read_bytes(), "the erasure ledger", values)
    assert erase_person(person, reason=REASON) is False
    assert len(list(ledger.entries())) == 1  # erased once, written once


def test_no_ledger_no_erasure(client, settings, tmp_path):
    """The ledger cannot be written: the erasure rolls back whole, and says why."""
    assert client.post("/en/consultation/", consultation_data()).status_code == HTTPStatus.FOUND
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    settings.PIWARDEN_ERASURE_LEDGER = blocked / "erasures.ledger"
    person = Person.objects.get()

    with pytest.raises(ledger.LedgerUnavailable, match="cannot be opened"):
        erase_person(person, reason=REASON)

    assert not Person.objects.get().is_erased
    assert Inquiry.objects.count() == 1
    assert not DataKey.objects.get(pk=person.data_key_id).is_destroyed
    assert not AuditEvent.objects.filter(event_type="person.shredded").exists()


# -- the restore ------------------------------------------------------------------------------

RESTORED_TABLES = (DataKey, Person, Inquiry)


class Snapshot:
    """The database as it was: SQLite's backup API (both ways), or on PostgreSQL the rows copied back."""

    def __init__(self, tmp_path: Path) -> None:
        self.copy = tmp_path / "before.sqlite3"
        self.rows: dict[str, list[tuple[Any, ...]]] = {}
        connection.ensure_connection()
        if connection.vendor == "sqlite":
            with sqlite3.connect(self.copy) as target:
                connection.connection.backup(target)
            return
        with connection.cursor() as cursor:
            for model in RESTORED_TABLES:
                cursor.execute(f"SELECT * FROM {model._meta.db_table}")  # noqa: S608  # our table names
                self.rows[model._meta.db_table] = cursor.fetchall()

    def restore(self) -> None:
        forget_cached_keys()
        if connection.vendor == "sqlite":
            source = sqlite3.connect(self.copy)
            try:
                source.backup(connection.connection)
            finally:
                source.close()
            return
        with transaction.atomic(), connection.cursor() as cursor:  # the foreign keys are checked at commit
            for model in RESTORED_TABLES:
                table = model._meta.db_table
                for row in self.rows[table]:
                    cursor.execute(f"DELETE FROM {table} WHERE id = %s", [row[0]])  # noqa: S608
                    marks = ", ".join(["%s"] * len(row))
                    cursor.execute(f"INSERT INTO {table} VALUES ({marks})", list(row))  # noqa: S608


def test_a_restored_database_is_erased_again_by_replaying_the_ledger(client, ledger_file, tmp_path):
    values = canaries()
    assert client.post("/en/consultation/", consultation_data(**values)).status_code == HTTPStatus.FOUND
    assert client.post("/en/consultation/", consultation_data(email="li.na@example.com")).status_code == 302
    inquiry = Inquiry.objects.select_related("person").get(person__email_index=blind.email_index(values["email"]))
    person = inquiry.person
    ciphertext = bytes(Inquiry.objects.filter(pk=inquiry.pk).values_list("name", flat=True).get())
    wrapped = bytes(DataKey.objects.get(pk=person.data_key_id).wrapped)
    backup = Snapshot(tmp_path)
    assert ledger.warning() is None

    assert erase_person(person, reason=REASON) is True
    assert ledger.warning() is None  # the ledger and the database agree

    backup.restore()

    # The earlier copy: the wrapped key is back, the KEK opens it, the person is readable again.
    assert Inquiry.objects.get(pk=inquiry.pk).name == values["name"]
    assert not Person.objects.get(pk=person.pk).is_erased
    warning = ledger.warning()
    assert warning is not None
    assert "names 1 person(s) this database has not erased" in warning
    assert "piwarden retention replay-erasures" in warning
    assert "\n" not in warning
    assert [m.id for m in check_erasure_ledger()] == ["people.W001"]  # piwarden check --deploy says it too

    out = replay()

    assert "Erased again: 1 person(s)" in out
    assert "could not be emptied" not in out
    assert ledger.warning() is None
    assert check_erasure_ledger() == []
    assert not Inquiry.objects.filter(pk=inquiry.pk).exists()
    erased = Person.objects.get(pk=person.pk)
    assert erased.is_erased
    assert erased.email_index is None
    assert DataKey.objects.get(pk=person.data_key_id).is_destroyed
    assert Inquiry.objects.get().email == "li.na@example.com"  # nobody else is touched
    event = AuditEvent.objects.get(event_type="person.shredded", extra__replayed_ledger_entry=1)
    assert event.extra["erased"]["consultation"] == 1
    summary = AuditEvent.objects.get(event_type="retention.erasures_replayed")
    assert summary.extra == {"ledger_entries": 1, "replayed": 1, "recorded_in_ledger": 0}
    assert len(list(ledger.entries())) == 1  # the replay wrote no second entry

    # Nothing of theirs is left in the database: no value, no ciphertext, no wrapped key.
    assert_absent_from_every_row(values)
    gone = {"ciphertext": ciphertext.hex(), "wrapped data key": wrapped.hex()}
    assert_absent_from_every_row(gone)
    if connection.vendor == "sqlite":
        written = b"".join(read_if_present(path) for path in sqlite_files())
        assert_absent(written, "the SQLite database, its -wal or -shm file", values)
        assert ciphertext not in written
        assert wrapped not in written

    # Idempotent: a second run finds nothing to do and records nothing.
    assert "Erased again: 0 person(s); erased already: 1" in replay()
    assert AuditEvent.objects.filter(event_type="retention.erasures_replayed").count() == 1


def test_erasures_the_ledger_lacks_are_written_to_it(client, settings, ledger_file, tmp_path):
    """A database erased before the ledger existed (or given a new ledger): start-up says so, replay records them."""
    assert client.post("/en/consultation/", consultation_data()).status_code == HTTPStatus.FOUND
    person = Person.objects.get()
    erase_person(person, reason=REASON)
    settings.PIWARDEN_ERASURE_LEDGER = tmp_path / "new.ledger"

    warning = ledger.warning()
    assert warning is not None
    assert "holds 1 erasure(s) the erasure ledger" in warning

    assert "written to the ledger that it lacked: 1" in replay()
    (entry,) = ledger.entries()
    assert entry.person == person.pk
    assert ledger.warning() is None
    assert AuditEvent.objects.get(event_type="retention.erasures_replayed").extra["recorded_in_ledger"] == 1


def test_a_ledger_entry_of_a_person_this_database_never_held_is_no_warning(ledger_file):
    """A backup older than the person: nothing of theirs to erase."""
    _append(1)
    assert ledger.warning() is None
    assert "not in this database: 1" in replay()


def test_replay_refuses_a_damaged_ledger(ledger_file):
    _append(2)
    ledger_file.write_text(ledger_file.read_text().replace('"seq":1', '"seq":7'))
    with pytest.raises(Exception, match="is damaged"):
        replay()


def test_the_operator_is_warned_until_the_replay_has_run(client, ledger_file, tmp_path):
    """As an operator sees it: `piwarden check --deploy` and `piwarden retention replay-erasures`, run as commands."""
    assert client.post("/en/consultation/", consultation_data()).status_code == HTTPStatus.FOUND
    person = Person.objects.get()
    backup = Snapshot(tmp_path)
    erase_person(person, reason=REASON)
    env = {"PIWARDEN_ERASURE_LEDGER": str(ledger_file)}
    assert "people.W001" not in piwarden("check", "--deploy", **env).stderr
    backup.restore()
    connection.close()  # the commands below write to this database

    before = piwarden("check", "--deploy", **env)
    assert "people.W001" in before.stderr
    assert "names 1 person(s) this database has not erased" in before.stderr
    replayed = piwarden("retention", "replay-erasures", **env)
    assert replayed.returncode == 0, replayed.stderr
    assert "Erased again: 1 person(s)" in replayed.stdout
    after = piwarden("check", "--deploy", **env)
    assert "people.W001" not in after.stderr

    assert Person.objects.get().is_erased
    assert not Inquiry.objects.exists()


def test_an_unreadable_ledger_is_one_line_not_a_crash(settings, tmp_path):
    settings.PIWARDEN_ERASURE_LEDGER = tmp_path  # a directory: reading it fails
    warning = ledger.warning()
    assert warning is not None
    assert "cannot be read" in warning
    with pytest.raises(Exception, match="cannot be read"):
        replay()
