"""Move django-otp's TOTP devices (secret in plaintext hex) to staff.Authenticator (secret encrypted).

Each device becomes an Authenticator with the same secret, drift, last accepted time step and
throttle state, so staff keep their authenticator app entry and a code spent before the upgrade
stays spent.  The plaintext rows are then deleted; on SQLite with ``secure_delete`` so that the
freed pages are zeroed, not left for a copy of the file to read.  (On PostgreSQL the old row
versions stay in the table's pages until VACUUM: the operator should run ``VACUUM`` on
``otp_totp_totpdevice`` after upgrading, and consider the old secrets exposed in earlier backups.)

The envelope format of the vault at this version (a Tink AES256-GCM keyset wrapped under the KEK
with ``piwarden/datakey/v1|<key id>`` as associated data; field associated data
``<table>|<row id>|<column>``) is written out here rather than imported: a migration must keep
doing what it did when it was written, whatever the app code becomes.  Only the KEK provider is
imported, because the KEK is reachable in no other way; with no KEK the migration stops (fail
closed) and nothing is moved.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import migrations
from uuid6 import uuid7

DATA_KEY_AD = b"piwarden/datakey/v1|"
SECRET_COLUMN = "secret"


def _new_id() -> int:
    return secrets.randbits(62) + 1


def encrypt_existing_devices(apps: Any, schema_editor: Any) -> None:
    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    Authenticator = apps.get_model("staff", "Authenticator")
    DataKey = apps.get_model("vault", "DataKey")
    old_devices = list(TOTPDevice.objects.using(schema_editor.connection.alias).order_by("pk"))
    if not old_devices:
        return  # a fresh installation: nothing to move, no key needed

    import tink  # noqa: PLC0415  # only when there is something to encrypt
    from tink import aead  # noqa: PLC0415  # idem
    from tink.proto import tink_pb2  # noqa: PLC0415  # idem

    from piwarden.vault.keys import get_provider  # noqa: PLC0415  # the one way to the KEK (see docstring)

    aead.register()
    kek = get_provider().kek()  # raises VaultUnavailable without keys: the migration stops here
    for old in old_devices:
        key_id = uuid7()
        handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
        wrapped = tink.proto_keyset_format.serialize_encrypted(handle, kek, DATA_KEY_AD + key_id.bytes)
        encrypted = tink_pb2.EncryptedKeyset()
        encrypted.ParseFromString(wrapped)
        DataKey.objects.create(
            id=key_id, wrapped=wrapped, kek_key_id=int.from_bytes(encrypted.encrypted_keyset[1:5], "big")
        )
        device_id = _new_id()
        associated = f"{Authenticator._meta.db_table}|{device_id}|{SECRET_COLUMN}".encode()
        ciphertext = handle.primitive(aead.Aead).encrypt(old.key.lower().encode("utf-8"), associated)
        Authenticator.objects.create(
            id=device_id,
            user_id=old.user_id,
            name=old.name,
            confirmed=old.confirmed,
            data_key_id=key_id,
            secret=ciphertext,  # bytes: stored as given (already encrypted)
            drift=old.drift,
            last_t=old.last_t,
            throttling_failure_timestamp=old.throttling_failure_timestamp,
            throttling_failure_count=old.throttling_failure_count,
            last_used_at=old.last_used_at,
        )
        # created_at is auto_now_add: keep the enrolment date of the device it replaces.
        Authenticator.objects.filter(pk=device_id).update(created_at=old.created_at)
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA secure_delete = ON")
    TOTPDevice.objects.filter(pk__in=[d.pk for d in old_devices]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("staff", "0001_authenticators_and_preferences"),
        ("otp_totp", "0003_add_timestamps"),
        ("vault", "0001_initial"),
    ]

    operations = [
        # Not reversible: putting secrets back in plaintext is not something to automate.
        migrations.RunPython(encrypt_existing_devices, migrations.RunPython.noop, elidable=False),
    ]
