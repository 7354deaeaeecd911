"""Migration staff.0002 moves existing django-otp TOTP devices to encrypted authenticators.

The database is put back to just before the migration, a device is enrolled the old way
(secret in plaintext hex), and the migration runs.  The staff member then signs in through the
login URL with a code from the authenticator app they already have, and the plaintext is gone.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django_otp.oath import totp

from piwarden.staff.models import Authenticator
from tests.conftest import STAFF_PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("SEC-01")]

BEFORE = [("staff", "0001_authenticators_and_preferences")]
OLD_SECRET = "3132333435363738393031323334353637383930"  # RFC 6238's test key, as django-otp stores it


def migrate(targets: list[tuple[str, str]] | None) -> Any:
    """Migrate to ``targets``, or (None) to the latest migration of every app, as `migrate` does."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([*targets, ("otp_totp", "0003_add_timestamps")]).apps


def test_existing_devices_are_encrypted_and_keep_working():
    old_apps = migrate(BEFORE)
    User = old_apps.get_model("auth", "User")
    Group = old_apps.get_model("auth", "Group")
    TOTPDevice = old_apps.get_model("otp_totp", "TOTPDevice")
    user = User.objects.create(username="olga", password=make_password(STAFF_PASSWORD), is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="sales")[0])
    TOTPDevice.objects.create(user=user, name="authenticator", key=OLD_SECRET, confirmed=True, last_t=5)

    migrate(None)

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM otp_totp_totpdevice")
        assert cursor.fetchone()[0] == 0  # the plaintext rows are gone
        cursor.execute("SELECT secret FROM staff_authenticator")
        (stored,) = cursor.fetchone()
    assert OLD_SECRET.encode() not in bytes(stored)
    assert bytes.fromhex(OLD_SECRET) not in bytes(stored)
    device = Authenticator.objects.get(user_id=user.pk)
    assert device.secret == OLD_SECRET
    assert device.last_t == 5  # codes spent before the upgrade stay spent

    code = f"{totp(bytes.fromhex(OLD_SECRET), Authenticator.STEP, Authenticator.T0, Authenticator.DIGITS):06d}"
    client = Client()
    response = client.post("/backoffice/login/", {"username": "olga", "password": STAFF_PASSWORD, "otp_token": code})
    assert response.status_code == HTTPStatus.FOUND
    assert client.get("/backoffice/").status_code == HTTPStatus.OK


def test_a_fresh_installation_migrates_without_keys(settings, tmp_path):
    """No device to move: the migration does not reach for the KEK (keys come after migrate)."""
    from piwarden.vault.keys import reset_provider  # noqa: PLC0415  # local to this test's set-up

    migrate(BEFORE)
    settings.PIWARDEN_KEYS = f"file:{tmp_path / 'none'}"
    reset_provider()
    try:
        migrate(None)
    finally:
        reset_provider()
    assert not (tmp_path / "none").exists()
