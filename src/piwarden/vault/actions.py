"""Write paths for keys and the sealed outbox: the operator's acts, each one audited.

Each entry point opens its own durable transaction for its database writes and its audit event,
so a caller cannot fold it into a larger transaction by mistake.  Work that cannot be one
transaction says so: files are created or deleted outside any (they cannot be rolled back), and a
rotation re-wraps in batches (one transaction each) before its one event is written.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from piwarden.audit.log import EventType, record_event
from piwarden.vault.crypto import rewrap_all
from piwarden.vault.keycheck import prepare_keys, record_key_check, reseal_key_check, wrapped_under_absent_keks
from piwarden.vault.keys import KeyProvider, LocalKeysetProvider, create_signing_key, get_provider
from piwarden.vault.models import KeyCheck
from piwarden.vault.outbox import delete_expired, retention


@dataclass(frozen=True)
class InitResult:
    created: bool  # keyset files were created
    replaced: bool  # new keys were put in place over existing data (audited)
    unreadable: int  # live data keys the keys now in place cannot unwrap


def initialise_keys(*, force: bool = False) -> InitResult:
    """``piwarden keys init``: keys for an empty installation, checked for any other.

    With ``force`` (the operator's ``--i-understand…`` flag) keys that are not the database's
    are put in place all the same; that act is audited with how many data keys it leaves
    unreadable.  Never overwrites a keyset file (see :func:`~piwarden.vault.keycheck.prepare_keys`).
    """
    prepared = prepare_keys(force=force)
    _signing_key(prepared.provider)  # prepare_keys makes it only where the others were missing
    if prepared.replace_because is None:
        return InitResult(created=prepared.created, replaced=False, unreadable=0)
    unreadable = _replace_keys(prepared.provider, prepared.replace_because)
    return InitResult(created=prepared.created, replaced=True, unreadable=unreadable)


def _signing_key(provider: KeyProvider) -> None:
    """The audit checkpoints' signing key beside the others (``piwarden.audit.signing``): made
    when missing, for a new or an existing installation alike (checkpoints signed by a lost key
    then fail ``audit verify`` until its public keyset is given back: docs/operations.md)."""
    if isinstance(provider, LocalKeysetProvider):
        create_signing_key(provider.directory)


@transaction.atomic(durable=True)
def _replace_keys(provider: KeyProvider, why: str) -> int:
    unreadable = wrapped_under_absent_keks(provider)
    record_key_check(provider, replace=True)
    # What the operator wrote off stops nothing from starting; a key lost later still does.
    KeyCheck.objects.filter(pk=1).update(written_off_before=timezone.now())
    record_event(
        EventType.KEYS_REPLACED,
        reason=why,
        extra={"location": settings.PIWARDEN_KEYS, "unreadable_data_keys": unreadable},
    )
    return unreadable


@dataclass(frozen=True)
class Rotation:
    new_key_id: int | None  # the KEK key this rotation added (None when it resumed an earlier one)
    rewrapped: int  # data keys moved under the primary


def rotate_keys(
    *, batch_size: int = 500, resume: bool = False, progress: Callable[[int, int], None] | None = None
) -> Rotation:
    """``piwarden keys rotate``: a new primary KEK key, every data key re-wrapped under it.

    The re-wrapping runs in batches of its own (safe to interrupt; ``resume`` re-wraps what an
    interrupted run left without adding a key).  Then the key check is sealed under the new
    primary and ``keys.rotated`` recorded, in one transaction.
    """
    provider = get_provider()
    new_key_id = None if resume else provider.rotate()
    moved = rewrap_all(batch_size=batch_size, progress=progress)
    with transaction.atomic(durable=True):
        reseal_key_check()
        record_event(EventType.KEYS_ROTATED, extra={"primary_key_id": provider.kek_primary_id(), "rewrapped": moved})
    return Rotation(new_key_id=new_key_id, rewrapped=moved)


def prune_outbox(directory: Path, now: datetime.datetime | None = None) -> int:
    """``piwarden outbox prune``: delete the sealed copies older than the declared retention.

    Returns how many; ``outbox.pruned`` records the count when there was any.  Deleted files
    cannot be rolled back: they go inside the transaction, just before its event is written.
    """
    with transaction.atomic(durable=True):
        deleted = delete_expired(directory, now)
        if deleted:
            record_event(EventType.OUTBOX_PRUNED, extra={"deleted": deleted, "retention_days": retention().days})
    return deleted
