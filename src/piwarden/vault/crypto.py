"""Per-person data keys: create, open, destroy, re-wrap; and AEAD on fields.

Associated data binds every ciphertext to where it belongs
(``table | row id | column``), so a ciphertext moved to another row or field
fails to decrypt instead of silently showing the wrong person's value.

Unwrapped data keys are kept in a small per-process cache that the web
middleware empties after every request; unwrapping costs ~20 µs, the AEAD
itself ~2 µs, so a request that shows one person pays the unwrap once.
"""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator

import tink
from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone
from tink import aead
from tink.proto import tink_pb2

from piwarden.vault.keys import VaultUnavailable, get_provider
from piwarden.vault.models import DataKey

logger = logging.getLogger(__name__)

# Sent with ``key_id`` each time a data key is unwrapped (the cache missed, or start-up checks
# a key).  Nothing in the site listens: it lets a test prove that a page or a task opened no
# one's data, on the real code path rather than a stand-in.
data_key_unwrapped = Signal()

# Unwrapped keys, kept by the thread that unwrapped (or made) them, for the rest of its request
# (``FailClosedMiddleware`` forgets them when the request ends): one thread's request ending
# must not take the keys from another's in the middle of its own, as a global cache did in a
# threaded server (a new person's key, not saved yet, lives only here until the INSERT).  A
# destroyed key is taken out of every thread's cache at once.
_CACHE_SIZE = 512
_caches: dict[int, OrderedDict[uuid.UUID, aead.Aead]] = {}
_cache_lock = threading.Lock()


class DataKeyDestroyed(Exception):
    """The person's data key was destroyed: their data is gone for good."""


class CiphertextInvalid(Exception):
    """A ciphertext failed authentication: tampered with, or not where it belongs."""


def _wrap_ad(key_id: uuid.UUID) -> bytes:
    return b"piwarden/datakey/v1|" + key_id.bytes


def _kek_id_of(wrapped: bytes) -> int:
    # ``wrapped`` is an EncryptedKeyset proto; its ciphertext starts with Tink's TINK output
    # prefix: one version byte, then the 4-byte id of the KEK key that encrypted it.
    encrypted = tink_pb2.EncryptedKeyset()
    encrypted.ParseFromString(wrapped)
    return int.from_bytes(encrypted.encrypted_keyset[1:5], "big")


def create_data_key() -> DataKey:
    """A new data key, wrapped under the current KEK primary and saved."""
    key = new_data_key()
    key.save(force_insert=True)
    return key


def new_data_key() -> DataKey:
    """A new data key, wrapped under the current KEK primary, not saved yet.

    Its primitive is ready for encrypting at once, so a write path can seal a new person's fields
    before its transaction opens and only INSERT them inside (``piwarden.prepared``).
    """
    provider = get_provider()
    key = DataKey()
    handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    wrapped = tink.proto_keyset_format.serialize_encrypted(handle, provider.kek(), _wrap_ad(key.id))
    key.wrapped = wrapped
    key.kek_key_id = _kek_id_of(wrapped)
    _remember(key.id, handle.primitive(aead.Aead))
    return key


def _remember(key_id: uuid.UUID, primitive: aead.Aead) -> None:
    with _cache_lock:
        cache = _caches.setdefault(threading.get_ident(), OrderedDict())
        cache[key_id] = primitive
        cache.move_to_end(key_id)
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)


def forget_cached_keys() -> None:
    """Forget every key this thread unwrapped (its request ended)."""
    with _cache_lock:
        _caches.pop(threading.get_ident(), None)


def unwrap(key: DataKey) -> aead.Aead:
    if key.is_destroyed:
        raise DataKeyDestroyed(str(key.id))
    provider = get_provider()
    wrapped = bytes(key.wrapped)
    for attempt in (1, 2):
        try:
            handle = tink.proto_keyset_format.parse_encrypted(wrapped, provider.kek(), _wrap_ad(key.id))
        except tink.TinkError:
            if attempt == 1:
                # Maybe another process rotated the KEK: re-read the keyset once.
                provider.reload()
                continue
            raise VaultUnavailable(
                f"data key {key.id} cannot be unwrapped with the current key-encryption keys"
            ) from None
        data_key_unwrapped.send(sender=DataKey, key_id=key.id)
        return handle.primitive(aead.Aead)
    raise AssertionError("unreachable")


def aead_for(key_id: uuid.UUID) -> aead.Aead:
    with _cache_lock:
        cache = _caches.get(threading.get_ident())
        cached = cache.get(key_id) if cache is not None else None
    if cached is not None:
        return cached
    key = DataKey.objects.get(pk=key_id)
    primitive = unwrap(key)
    _remember(key_id, primitive)
    return primitive


def encrypt(key_id: uuid.UUID, plaintext: str, associated_data: bytes) -> bytes:
    ciphertext: bytes = aead_for(key_id).encrypt(plaintext.encode("utf-8"), associated_data)
    return ciphertext


def decrypt(key_id: uuid.UUID, ciphertext: bytes, associated_data: bytes) -> str:
    try:
        plaintext: bytes = aead_for(key_id).decrypt(ciphertext, associated_data)
    except tink.TinkError:
        raise CiphertextInvalid(associated_data.decode("utf-8", "replace")) from None
    return plaintext.decode("utf-8")


def destroy_data_key(key: DataKey) -> None:
    """Crypto-shred: after this, nothing encrypted under ``key`` can be read, anywhere.

    Must run inside the caller's transaction (the erasure writes its audit
    event beside it).
    """
    if key.is_destroyed:
        return
    key.wrapped = b""
    key.destroyed_at = timezone.now()
    destroy_data_keys([key.id], key.destroyed_at)


def destroy_data_keys(key_ids: Collection[uuid.UUID], now: datetime.datetime) -> int:
    """:func:`destroy_data_key` for many keys at once (one UPDATE): those not destroyed yet are,
    at ``now``, and every process-local cache of them is dropped.  Returns how many were destroyed."""
    ids = list(key_ids)
    destroyed = DataKey.objects.filter(pk__in=ids, destroyed_at__isnull=True).update(wrapped=b"", destroyed_at=now)
    with _cache_lock:
        for cache in _caches.values():
            for key_id in ids:
                cache.pop(key_id, None)
    return destroyed


def count_unopenable(batch_size: int = 2000) -> tuple[int, int]:
    """(live data keys, how many of them the current KEKs cannot unwrap), trying every one.

    A scan, for ``keys status``: a key wrapped under a KEK key id that is not in
    the keyset is counted without trying; the others are really unwrapped, so a
    corrupted or foreign wrapped key is counted too.
    """
    provider = get_provider()
    kek = provider.kek()
    known = set(provider.key_ids())
    live = unopenable = 0
    keys = DataKey.objects.filter(destroyed_at__isnull=True).only("id", "wrapped", "kek_key_id")
    for key in keys.iterator(chunk_size=batch_size):
        live += 1
        if key.kek_key_id not in known:
            unopenable += 1
            continue
        try:
            tink.proto_keyset_format.parse_encrypted(bytes(key.wrapped), kek, _wrap_ad(key.id))
        except tink.TinkError:
            unopenable += 1
    return live, unopenable


def rewrap_all(batch_size: int = 500, progress: Callable[[int, int], None] | None = None) -> int:
    """Re-wrap every live data key under the current KEK primary; return how many moved.

    Each batch is one transaction; the job can be interrupted and run again
    (it only picks keys not yet under the primary).  Reads keep working
    throughout because the old KEK keys stay in the keyset.
    """
    provider = get_provider()
    primary = provider.kek_primary_id()
    pending = DataKey.objects.filter(destroyed_at__isnull=True).exclude(kek_key_id=primary)
    total = pending.count()
    done = 0
    if progress:
        progress(done, total)
    for batch in _batches(pending, batch_size):
        with transaction.atomic():
            for key in DataKey.objects.select_for_update().filter(pk__in=batch, destroyed_at__isnull=True):
                handle = tink.proto_keyset_format.parse_encrypted(bytes(key.wrapped), provider.kek(), _wrap_ad(key.id))
                key.wrapped = tink.proto_keyset_format.serialize_encrypted(handle, provider.kek(), _wrap_ad(key.id))
                key.kek_key_id = _kek_id_of(key.wrapped)
                key.save(update_fields=["wrapped", "kek_key_id"])
        done += len(batch)
        if progress:
            progress(done, total)
    return done


def _batches(queryset: QuerySet[DataKey], size: int) -> Iterator[list[uuid.UUID]]:
    last: uuid.UUID | None = None
    while True:
        page = queryset.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        ids = list(page.values_list("pk", flat=True)[:size])
        if not ids:
            return
        yield ids
        last = ids[-1]
