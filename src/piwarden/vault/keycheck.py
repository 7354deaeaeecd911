"""Are these the keys this database was written with?  Asked once, at start-up.

Why
---
The keys live apart from the database (that is the point of envelope
encryption), so the two can drift apart: a key directory moved away, the wrong
backup restored, a second machine with keys of its own.  A process that
carried on regardless would wrap new data keys under a new KEK and index new
people under a new blind-index key: a returning e-mail would become a stranger,
and once the right keys came back, everything written in between would be
unreadable instead.  So every process that may touch personal data asks here
before it starts (the web process in ``piwarden.wsgi``, ``piwarden serve``
through ``keys init``, every other command through ``piwarden.cli``) and
refuses with one line that says what is missing, where it was looked for and
what to do.

How
---
When keys are first put in place, the database gets one :class:`KeyCheck` row:
a fixed canary sealed under the KEK, and the blind index of a fixed canary.
Start-up reads that row (one query), opens the seal and recomputes the digest,
so both keys are checked without scanning anything; one indexed count makes sure no
data key is wrapped under a KEK key the keyset no longer holds.  A database that holds
data but no check row (written before this check existed) is checked by
unwrapping its newest data key, and then gets its row.

An installation is *empty* when it has no check row, no data key and no blind
index: only then does ``keys init`` create keys.  Putting new keys in place
over anything else takes :data:`FORCE_FLAG` and is recorded in the audit log
(the write path is :func:`piwarden.vault.actions.initialise_keys`; this module
creates missing keyset files, compares and checks, and records no event).
"""

from __future__ import annotations

import contextlib
import datetime
import hmac
from dataclasses import dataclass
from pathlib import Path

import tink
from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.utils import timezone

from piwarden.vault import blind, crypto
from piwarden.vault.fields import BlindIndexField
from piwarden.vault.keys import BLIND_FILE, KEK_FILE, KeyProvider, LocalKeysetProvider, VaultUnavailable, get_provider
from piwarden.vault.models import DataKey, KeyCheck

FORCE_FLAG = "--i-understand-existing-data-becomes-unreadable"

_SEAL_AD = b"piwarden/keycheck/v1"
_SEAL_CANARY = b"piwarden key check: sealed under the key-encryption key"
_BLIND_KIND = "keycheck"
_BLIND_CANARY = "piwarden key check: blind-indexed"


class KeysRefused(VaultUnavailable):
    """The keys at hand cannot be used with this database: stop before touching anything."""


@dataclass(frozen=True)
class _Database:
    record: KeyCheck | None
    holds_data: bool  # a check row, a data key or a blind index: something the keys must open


@dataclass(frozen=True)
class PreparedKeys:
    """The keys at hand after ``keys init``'s checks, and whether they must replace the database's."""

    provider: KeyProvider
    created: bool  # keyset files were created
    replace_because: str | None  # why the keys are not the database's (only with force); None: they are


# -- what the database holds -------------------------------------------------------------


def _database_absent() -> bool:
    """True for an SQLite file that does not exist yet: asking would create it (a stray file)."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "sqlite":
        return False
    name = str(connection.settings_dict["NAME"])
    return name != ":memory:" and not name.startswith("file:") and not Path(name).exists()


def _holds_key_dependent_rows() -> bool:
    """A data key, or any blind index in any table (only asked when there is no check row)."""
    if DataKey.objects.exists():
        return True
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, BlindIndexField) and (
                model._base_manager.filter(**{f"{field.attname}__isnull": False}).exists()
            ):
                return True
    return False


def _read_database() -> _Database | None:
    """What the database holds that depends on the keys; None when it is not there or not migrated."""
    if _database_absent():
        return None
    try:
        record = KeyCheck.objects.filter(pk=1).first()
    except DatabaseError:
        record = None  # not migrated this far yet: the data tables may still exist
    if record is not None:
        return _Database(record, holds_data=True)
    try:
        return _Database(None, holds_data=_holds_key_dependent_rows())
    except DatabaseError:
        return None  # not migrated: nothing is stored, and the command will say so itself


def database_ready() -> bool:
    return _read_database() is not None


# -- comparing keys with the database ---------------------------------------------------------


def _seal_opens(provider: KeyProvider, sealed: bytes) -> bool:
    for attempt in (1, 2):
        try:
            return hmac.compare_digest(provider.kek().decrypt(sealed, _SEAL_AD), _SEAL_CANARY)
        except tink.TinkError:
            if attempt == 1:
                provider.reload()  # another process may have rotated the KEK and re-sealed the check
    return False


def _blind_digest() -> str:
    return blind.blind_index(_BLIND_KIND, _BLIND_CANARY)


def _mismatch(provider: KeyProvider, database: _Database) -> str | None:
    """Why the keys at hand are not the database's, or None when they are (or nothing is stored)."""
    record = database.record
    if record is not None:
        if not _seal_opens(provider, bytes(record.sealed)):
            return "the key-encryption key does not open the database's key check"
        if not hmac.compare_digest(_blind_digest(), record.blind_digest):
            return "the blind-index key gives other digests than the ones the database was written with"
        orphans = wrapped_under_absent_keks(provider, since=record.written_off_before)
        if orphans:
            # A KEK key retired from the keyset too early (or an old keyset restored): the check row
            # opens, but these people's data would not.
            return f"{orphans} data keys are wrapped under key-encryption keys the keyset does not hold"
        return None
    if not database.holds_data:
        return None
    # Written before the check row existed: the newest data key must unwrap.
    newest = DataKey.objects.filter(destroyed_at__isnull=True).order_by("-created_at").first()
    if newest is not None:
        try:
            crypto.unwrap(newest)
        except VaultUnavailable:
            return f"the key-encryption key does not unwrap the database's data keys (tried {newest.id})"
    return None


def wrapped_under_absent_keks(provider: KeyProvider, *, since: datetime.datetime | None = None) -> int:
    """Live data keys wrapped under KEK keys the keyset lacks: one indexed count, no unwrapping.

    ``since``: count only keys created from then on (the ones before a forced replacement were
    written off by the operator; ``keys status`` still counts them).
    """
    keys = DataKey.objects.filter(destroyed_at__isnull=True).exclude(kek_key_id__in=provider.key_ids())
    if since is not None:
        keys = keys.filter(created_at__gte=since)
    return keys.count()


def _where() -> str:
    return f"PIWARDEN_KEYS={settings.PIWARDEN_KEYS}"


def _missing_message(problem: VaultUnavailable) -> str:
    return (
        f"{problem} ({_where()}), and the database holds personal data written with those keys. "
        "Restore the keys from your backup; only if they are lost for good, "
        f"`piwarden keys init {FORCE_FLAG}` creates new ones and leaves that data unreadable."
    )


def _mismatch_message(why: str) -> str:
    return (
        f"the keys at {_where()} are not the ones this database was written with: {why}. "
        "Restore the right keys from your backup; only if they are lost for good, "
        f"`piwarden keys init {FORCE_FLAG}` puts these keys in place and leaves the stored data unreadable."
    )


def record_key_check(provider: KeyProvider, *, replace: bool = False) -> None:
    """Write the check row for the keys at hand (``replace``: over another's; the caller audits)."""
    row = KeyCheck(
        sealed=provider.kek().encrypt(_SEAL_CANARY, _SEAL_AD),
        kek_key_id=provider.kek_primary_id(),
        blind_digest=_blind_digest(),
        recorded_at=timezone.now(),
    )
    if replace:
        KeyCheck.objects.update_or_create(
            pk=1,
            defaults={f: getattr(row, f) for f in ("sealed", "kek_key_id", "blind_digest", "recorded_at")},
        )
        return
    # Several web workers may start at once: the first row stands, the others are dropped.  Without
    # the check table (not migrated yet), the next start after `migrate` records it.
    with contextlib.suppress(DatabaseError):
        KeyCheck.objects.bulk_create([row], ignore_conflicts=True)


def verify_keys(*, record: bool = True, missing_ok_when_empty: bool = False) -> None:
    """Raise :class:`KeysRefused` unless the keys at hand are the ones this database was written with.

    One query when the database has its check row.  ``record`` writes the row
    when it is missing and the keys check out; ``missing_ok_when_empty`` lets a
    command run without keys while nothing depends on them (it will fail
    closed, per operation, if it does need them).
    """
    provider = get_provider()
    database = _read_database()
    try:
        provider.kek()
        provider.blind_prf()
    except VaultUnavailable as exc:
        if database is not None and database.holds_data:
            raise KeysRefused(_missing_message(exc)) from None
        if missing_ok_when_empty:
            return
        raise KeysRefused(
            f"{exc} ({_where()}); this installation holds no personal data yet: "
            "create the keys with `piwarden keys init`."
        ) from None
    if database is None:
        return  # no database yet: nothing to compare with
    why = _mismatch(provider, database)
    if why is not None:
        raise KeysRefused(_mismatch_message(why))
    if record and database.record is None:
        record_key_check(provider)


def prepare_keys(*, force: bool = False) -> PreparedKeys:
    """The checks of ``piwarden keys init``: create keys for an empty installation, check them for any other.

    Never overwrites a keyset file.  Raises :class:`KeysRefused` when the keys at hand are
    missing or not the database's, unless ``force`` (the operator's :data:`FORCE_FLAG`): then
    missing keys are created and the answer says why they must replace the database's, which
    :func:`piwarden.vault.actions.initialise_keys` does, audited.
    """
    provider = get_provider()
    database = _read_database()
    holds_data = database is not None and database.holds_data
    created = False
    if isinstance(provider, LocalKeysetProvider):
        missing = [name for name in (KEK_FILE, BLIND_FILE) if not (provider.directory / name).exists()]
        if missing and holds_data and not force:
            raise KeysRefused(
                _missing_message(VaultUnavailable(f"key file {provider.directory / missing[0]} is missing"))
            )
        if missing:
            created = provider.initialise()
            provider.reload()
    if database is None:
        provider.kek()  # report unreadable keys now, not at the first request
        provider.blind_prf()
        return PreparedKeys(provider, created=created, replace_because=None)
    why = "new keys were created" if created and holds_data else _mismatch(provider, database)
    if why is None:
        if database.record is None:
            record_key_check(provider)
        return PreparedKeys(provider, created=created, replace_because=None)
    if not force:
        raise KeysRefused(_mismatch_message(why))
    return PreparedKeys(provider, created=created, replace_because=why)


def reseal_key_check() -> None:
    """After a KEK rotation: seal the check under the new primary, so the old key can be retired."""
    provider = get_provider()
    record = KeyCheck.objects.filter(pk=1).first()
    if record is None or record.kek_key_id == provider.kek_primary_id():
        return
    if not _seal_opens(provider, bytes(record.sealed)):
        raise KeysRefused(_mismatch_message("the key-encryption key does not open the database's key check"))
    record.sealed = provider.kek().encrypt(_SEAL_CANARY, _SEAL_AD)
    record.kek_key_id = provider.kek_primary_id()
    record.save(update_fields=["sealed", "kek_key_id"])


def key_check_status() -> str | None:
    """For ``keys status`` and ``check --deploy``: the reason the keys do not fit, or None (read-only)."""
    database = _read_database()
    if database is None:
        return None
    return _mismatch(get_provider(), database)
