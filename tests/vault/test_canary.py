"""The canary: personal data submitted through the site never reaches the disk in plaintext.

A consultation with unique values (the canaries) goes through the real form and
the real task worker (the acknowledgement is sent).  Then every byte the site
wrote is searched for them:

* on SQLite, the database file with its ``-wal`` and ``-shm`` files, read while
  the connection is still open, so that nothing has been checkpointed out of
  the write-ahead log first: pages still in the log are read there;
* on any database, every row of every table, read back through SQL (text
  values, and binary values both raw and hex-encoded);
* every file under ``DATA_DIR`` (keys, secret key, outbox, other databases).

The acknowledgement e-mail legitimately contains the recipient's address.  The
test puts back the embedded default's mailer (Django's test runner swaps it for
locmem): the sealed file outbox under ``DATA_DIR/outbox``.  The control opens
the sealed message and finds the address there, so the search is meaningful.

Other xdist workers share ``DATA_DIR`` (their own test databases live there):
a file that vanishes between listing and reading is skipped.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection

from piwarden.inquiries.models import PERSONAL_FIELDS, Inquiry
from piwarden.people.actions import shred_person
from piwarden.vault.models import DataKey
from piwarden.vault.outbox import open_sealed
from tests.conftest import consultation_data

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("SEC-01")]


def canaries() -> dict[str, str]:
    tag = uuid.uuid4().hex
    mobile = "139" + str(uuid.uuid4().int)[:8]  # a valid mainland mobile number no other test uses
    return {
        "name": f"Canary{tag}",
        "email": f"canary-{tag}@example.com",
        "company": f"Canary Company {tag}",
        "position": f"Canary Officer {tag}",
        "phone": mobile,
    }


def needles(values: dict[str, str]) -> dict[str, list[bytes]]:
    """What to look for, per field: UTF-8 (lower-cased) and UTF-16, and the phone in E.164."""
    found: dict[str, list[bytes]] = {}
    for field, value in values.items():
        forms = {value.lower(), "+86" + value} if field == "phone" else {value.lower()}
        found[field] = [f.encode(codec) for f in forms for codec in ("utf-8", "utf-16-le")]
    return found


def files_under(directory: Path) -> Iterator[Path]:
    yield from (p for p in sorted(directory.rglob("*")) if p.is_file())


def read_if_present(path: Path) -> bytes:
    """A file's bytes; a database file's through another process.

    Closing any file descriptor of an SQLite file drops every POSIX lock this process holds on
    it, the lock of Django's open connection included: another process closing its own connection
    (a command a later test starts) would then see itself the last one and delete the -wal and
    -shm files under this process's feet ("disk I/O error" in a later test).  A child process's
    descriptors carry no lock of ours.
    """
    if ".sqlite3" in path.name:
        result = subprocess.run(["cat", str(path)], capture_output=True, check=False)  # noqa: S603, S607  # fixed argv
        return result.stdout if result.returncode == 0 else b""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""  # another worker's temporary file, gone since the listing


def assert_absent(haystack: bytes, where: str, values: dict[str, str]) -> None:
    lowered = haystack.lower()
    for field, forms in needles(values).items():
        for needle in forms:
            assert needle not in lowered, f"the {field} canary is in plaintext in {where}"


def sqlite_files() -> list[Path]:
    database = Path(connection.settings_dict["NAME"])
    return [database, Path(f"{database}-wal"), Path(f"{database}-shm")]


def assert_absent_from_every_row(values: dict[str, str]) -> int:
    """Read every table back through SQL; binary values are searched raw and as hex text."""
    rows = 0
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {quote(table)}")  # noqa: S608  # table names from introspection
            for row in cursor.fetchall():
                rows += 1
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        raw = bytes(value)
                        assert_absent(raw, f"a binary column of {table}", values)
                        assert_absent(raw.hex().encode(), f"a binary column of {table} (hex)", values)
                    elif value is not None:
                        text = str(value).encode()
                        assert_absent(text, f"table {table}", values)
                        hex_forms = {f: v.encode().hex() for f, v in values.items()}
                        assert_absent(text, f"table {table} (hex)", hex_forms)
    return rows


def test_no_personal_value_is_stored_in_plaintext_anywhere(client, settings):
    values = canaries()
    outbox = Path(settings.DATA_DIR) / "outbox" / uuid.uuid4().hex
    settings.MAILERS = {
        "default": {"BACKEND": "piwarden.vault.outbox.SealedFileBackend", "OPTIONS": {"file_path": str(outbox)}}
    }

    response = client.post("/en/consultation/", consultation_data(**values))
    assert response.status_code == HTTPStatus.FOUND
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)

    inquiry = Inquiry.objects.get()
    assert inquiry.acknowledged_at is not None
    assert inquiry.name == values["name"]
    sealed = [open_sealed(path) for path in files_under(outbox)]
    assert len(sealed) == 2  # the acknowledgement and the sales notice, on disk
    assert any(values["email"].encode() in message for message in sealed)  # the control: it is in there

    rows = assert_absent_from_every_row(values)
    assert rows > 0

    if connection.vendor == "sqlite":
        # Read the files while this connection is open: no checkpoint has folded the log away.
        written = b"".join(read_if_present(path) for path in sqlite_files())
        ciphertext = Inquiry.objects.filter(pk=inquiry.pk).values_list("name", flat=True).get()
        assert bytes(ciphertext) in written  # the control: the row is in the bytes we search
        assert_absent(written, "the SQLite database, its -wal or -shm file", values)

    searched = list(files_under(Path(settings.DATA_DIR)))
    assert any(p.parent.name == "keys" for p in searched)  # the keys are searched too
    for path in searched:
        assert_absent(read_if_present(path), str(path), values)


def test_after_shredding_no_path_reads_the_values(client):
    values = canaries()
    assert client.post("/en/consultation/", consultation_data(**values)).status_code == HTTPStatus.FOUND
    inquiry = Inquiry.objects.select_related("person").get()
    assert inquiry.email == values["email"]

    shred_person(inquiry.person, reason="test: erasure")

    fresh = Inquiry.objects.get(pk=inquiry.pk)
    assert {name: getattr(fresh, name) for name in PERSONAL_FIELDS} == dict.fromkeys(PERSONAL_FIELDS)
    assert DataKey.objects.get(pk=fresh.data_key_id).destroyed_at is not None
    assert not bytes(DataKey.objects.get(pk=fresh.data_key_id).wrapped)
    # The queued acknowledgement finds nothing to send to.
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)
    assert [m for m in mail.outbox if values["email"] in m.to] == []
    assert Inquiry.objects.get(pk=inquiry.pk).acknowledged_at is None
