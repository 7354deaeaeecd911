"""Authenticator secrets never reach the disk in plaintext, and are useless without the KEK.

The canary is the secret itself, read from the otpauth:// link that ``createstaff`` prints (what
the staff member scans).  Every byte the site wrote is searched for it in every form an
authenticator secret takes: raw bytes, hex (django-otp's column format) and base32 (the link's).
"""

from __future__ import annotations

import base64
import io
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from piwarden.staff.models import Authenticator
from piwarden.vault.crypto import forget_cached_keys
from piwarden.vault.keys import reset_provider
from tests.conftest import STAFF_PASSWORD, current_code, sign_in
from tests.vault.test_canary import files_under, read_if_present, sqlite_files

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("SEC-01")]


def create_staff_and_read_the_secret(tmp_path: Path, username: str) -> bytes:
    password_file = tmp_path / "pw"
    password_file.write_text(STAFF_PASSWORD)
    out = io.StringIO()
    call_command("createstaff", username, role="sales", password_file=password_file, stdout=out)
    link = next(line for line in out.getvalue().splitlines() if line.startswith("otpauth://"))
    secret = parse_qs(urlsplit(link).query)["secret"][0]
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def forms_of(secret: bytes) -> list[bytes]:
    b32 = base64.b32encode(secret).rstrip(b"=")
    return [secret, secret.hex().encode(), secret.hex().upper().encode(), b32, b32.lower()]


def assert_absent(haystack: bytes, where: str, secret: bytes) -> None:
    for needle in forms_of(secret):
        assert needle not in haystack, f"the authenticator secret is in plaintext in {where}"


def every_value_in_the_database() -> list[tuple[str, bytes]]:
    quote = connection.ops.quote_name
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {quote(table)}")  # noqa: S608  # table names from introspection
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        found.append((table, bytes(value)))
                    elif value is not None:
                        found.append((table, str(value).encode()))
    return found


def test_the_authenticator_secret_is_stored_nowhere_in_plaintext(tmp_path, data_dir):
    secret = create_staff_and_read_the_secret(tmp_path, "casey")
    user = Authenticator.objects.get(user__username="casey").user
    # The control: this is the secret the server checks codes against; the sign-in works.
    assert sign_in(Client(), user).status_code == HTTPStatus.FOUND

    values = every_value_in_the_database()
    assert any(table == "staff_authenticator" for table, _ in values)
    for table, value in values:
        assert_absent(value, f"table {table}", secret)
        assert_absent(value.hex().encode(), f"table {table} (as hex)", secret)

    if connection.vendor == "sqlite":
        written = b"".join(read_if_present(path) for path in sqlite_files())
        ciphertext = Authenticator.objects.filter(user=user).values_list("secret", flat=True).get()
        assert bytes(ciphertext) in written  # the control: the row is in the bytes searched
        assert_absent(written, "the SQLite database, its -wal or -shm file", secret)
    for path in files_under(data_dir):
        assert_absent(read_if_present(path), str(path), secret)


def test_a_secret_moved_to_another_authenticator_does_not_open(tmp_path):
    create_staff_and_read_the_secret(tmp_path, "casey")
    create_staff_and_read_the_secret(tmp_path, "drew")
    casey = Authenticator.objects.get(user__username="casey")
    drew = Authenticator.objects.get(user__username="drew")
    # An attacker with write access gives drew casey's ciphertext and data key.
    stolen = Authenticator.objects.filter(pk=casey.pk).values_list("secret", "data_key_id").get()
    Authenticator.objects.filter(pk=drew.pk).update(secret=stolen[0])
    forget_cached_keys()
    data = {"username": "drew", "password": STAFF_PASSWORD, "otp_token": current_code(casey.user)}
    client = Client(raise_request_exception=False)
    response = client.post("/backoffice/login/", data)
    assert response.status_code != HTTPStatus.FOUND
    assert client.get("/backoffice/").status_code == HTTPStatus.FOUND  # still signed out


def test_without_the_key_encryption_key_sign_in_fails_closed(tmp_path, settings):
    create_staff_and_read_the_secret(tmp_path, "casey")
    code = current_code(Authenticator.objects.get(user__username="casey").user)
    settings.PIWARDEN_KEYS = f"file:{tmp_path / 'no-keys-here'}"
    reset_provider()
    forget_cached_keys()
    try:
        client = Client()
        response = client.post(
            "/backoffice/login/", {"username": "casey", "password": STAFF_PASSWORD, "otp_token": code}
        )
        assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
        assert client.get("/backoffice/").status_code == HTTPStatus.FOUND  # not signed in
        assert not (tmp_path / "no-keys-here").exists()  # and no key was created on the way
    finally:
        reset_provider()
