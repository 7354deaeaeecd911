"""Key-encryption keys: where they live and how they are reached.

Design
------
piwarden uses envelope encryption.  Each person has a *data key* (a Tink
AES256-GCM keyset of one key) that encrypts their fields; the data key is
stored in the database only *wrapped* by the *key-encryption key* (KEK).  The
KEK never enters the database.  Destroying a person's wrapped data key makes
every ciphertext of theirs in the live database unreadable (crypto-shredding).
A backup taken before that still holds the wrapped data key, which the KEK
unwraps: restoring it restores the person's data (docs/operations.md).

A :class:`KeyProvider` hands out two primitives, and manages the keysets behind them
(``kek_primary_id``, ``key_ids``, ``reload``, ``rotate``):

* ``kek()`` — the AEAD that wraps and unwraps data keys;
* ``blind_prf()`` — the keyed PRF behind blind indexes (HMAC-SHA256), so a
  person can be found by e-mail without decrypting anything.

The embedded default, :class:`LocalKeysetProvider`, keeps two Tink keysets as
JSON files (mode 0600) in ``var/keys/``.  A KMS or HashiCorp Vault transit key
replaces it by implementing the six methods of :class:`KeyProvider`; nothing else changes.

Failure is closed: when a keyset is missing or unreadable every use raises
:class:`VaultUnavailable`, the web layer answers 503, and nothing is written.
Keysets are created only by ``piwarden keys init`` (``make run`` calls it),
and only for an empty installation; the running site never creates a key on
its own, because a silently created new KEK would make every stored data key
unreadable.  Every process checks at start-up that the keys at hand are the
ones the database was written with (:mod:`piwarden.vault.keycheck`).

Rotation (``rotate()``) adds a new KEK key and makes it primary; old keys stay
in the keyset so existing wrapped keys still open while they are re-wrapped.
Other processes notice the new keyset when they meet a key id they do not
know (``reload``), so reads keep working throughout.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol

import tink
from django.conf import settings
from tink import aead, prf, secret_key_access, signature
from tink.proto import tink_pb2

logger = logging.getLogger(__name__)

aead.register()
prf.register()
signature.register()

KEK_FILE = "kek.json"
BLIND_FILE = "blind-index.json"
# The audit checkpoints' signing key and its public half (piwarden.audit.signing uses them).
SIGNING_FILE = "audit-signing.json"
PUBLIC_SIGNING_FILE = "audit-signing.public.json"


class VaultUnavailable(Exception):
    """Keys are missing or unreadable; the caller must fail closed."""


class KeyProvider(Protocol):
    def kek(self) -> aead.Aead: ...
    def kek_primary_id(self) -> int: ...
    def blind_prf(self) -> prf.Prf: ...
    def reload(self) -> None: ...
    def key_ids(self) -> list[int]: ...
    def rotate(self) -> int: ...


class LocalKeysetProvider:
    """Tink keysets in a directory on this machine (the embedded default)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._kek_handle: tink.KeysetHandle | None = None
        self._kek_aead: aead.Aead | None = None  # building a primitive costs ~30 µs; keep it
        self._prf: prf.Prf | None = None

    # -- creation ----------------------------------------------------------

    def initialise(self) -> bool:
        """Create missing keysets; return True when something was created."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = False
        for name, template in (
            (KEK_FILE, aead.aead_key_templates.AES256_GCM),
            (BLIND_FILE, prf.prf_key_templates.HMAC_SHA256),
        ):
            path = self.directory / name
            if path.exists():
                continue
            handle = tink.new_keyset_handle(template)
            try:
                _write_new(path, tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
            except FileExistsError:
                continue  # another process created it first; theirs stands
            created = True
        return create_signing_key(self.directory) or created

    # -- loading -----------------------------------------------------------

    def _read(self, name: str) -> tink.KeysetHandle:
        return read_keyset(self.directory / name)

    def _kek_keyset(self) -> tink.KeysetHandle:
        with self._lock:
            if self._kek_handle is None:
                self._kek_handle = self._read(KEK_FILE)
            return self._kek_handle

    def kek(self) -> aead.Aead:
        handle = self._kek_keyset()
        with self._lock:
            if self._kek_aead is None:
                self._kek_aead = handle.primitive(aead.Aead)
            return self._kek_aead

    def kek_primary_id(self) -> int:
        return int(self._kek_keyset().keyset_info().primary_key_id)

    def blind_prf(self) -> prf.Prf:
        with self._lock:
            if self._prf is None:
                self._prf = self._read(BLIND_FILE).primitive(prf.PrfSet).primary()
            return self._prf

    def reload(self) -> None:
        with self._lock:
            self._kek_handle = None
            self._kek_aead = None
            self._prf = None

    # -- rotation ----------------------------------------------------------

    def rotate(self) -> int:
        """Add a new AES256-GCM key to the KEK keyset, make it primary, return its id."""
        handle, key_id = with_new_primary(self._read(KEK_FILE), aead.aead_key_templates.AES256_GCM)
        _replace(self.directory / KEK_FILE, tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
        self.reload()
        return key_id

    def key_ids(self) -> list[int]:
        return [int(k.key_id) for k in self._kek_keyset().keyset_info().key_info]


def read_keyset(path: Path, *, hint: str = "") -> tink.KeysetHandle:
    """A Tink keyset file, or VaultUnavailable saying what is wrong with it (``hint``: what to do)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VaultUnavailable(f"key file {path} is missing{hint}") from None
    except OSError as exc:
        raise VaultUnavailable(f"key file {path} cannot be read: {exc.strerror}") from None
    try:
        return tink.json_proto_keyset_format.parse(text, secret_key_access.TOKEN)
    except tink.TinkError as exc:
        raise VaultUnavailable(f"key file {path} is not a valid Tink keyset: {exc}") from None


def with_new_primary(current: tink.KeysetHandle, template: Any) -> tuple[tink.KeysetHandle, int]:
    """``current`` with a new key of ``template`` added and made primary (the old keys stay, so
    what they sealed or signed still opens or verifies); and the new key's id."""
    keyset = tink_pb2.Keyset()
    keyset.ParseFromString(tink.proto_keyset_format.serialize(current, secret_key_access.TOKEN))
    fresh = tink_pb2.Keyset()
    fresh.ParseFromString(tink.proto_keyset_format.serialize(tink.new_keyset_handle(template), secret_key_access.TOKEN))
    new_key = fresh.key[0]
    keyset.key.append(new_key)
    keyset.primary_key_id = new_key.key_id
    return tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN), int(new_key.key_id)


def create_signing_key(directory: Path) -> bool:
    """Make the audit signing keyset (Ed25519) and its public half if there is none; True when made."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / SIGNING_FILE
    if path.exists():
        return False
    handle = tink.new_keyset_handle(signature.signature_key_templates.ED25519)
    try:
        _write_new(path, tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
    except FileExistsError:
        return False  # another process made it first; theirs stands
    publish_signing_key(directory, handle)
    return True


def publish_signing_key(directory: Path, handle: tink.KeysetHandle) -> None:
    """Write the public half of the signing keyset, readable by all (it is for verifiers)."""
    public = directory / PUBLIC_SIGNING_FILE
    _replace(public, tink.json_proto_keyset_format.serialize_without_secret(handle.public_keyset_handle()))
    public.chmod(0o644)


def _write_new(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` (mode 0600) all at once; FileExistsError if it exists.

    The content is written to a private temporary file first and then linked
    into place, so no reader ever sees a half-written keyset.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _replace(path: Path, text: str) -> None:
    """Write a keyset atomically: a crash leaves either the old or the new file."""
    tmp = path.with_name(f".{path.name}.rotate.tmp")
    tmp.unlink(missing_ok=True)
    _write_new(tmp, text)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


_provider: KeyProvider | None = None
_provider_lock = threading.Lock()


def get_provider() -> KeyProvider:
    """The provider named by ``settings.PIWARDEN_KEYS`` (``file:<dir>``)."""
    global _provider  # noqa: PLW0603  # one provider per process, built lazily from settings
    with _provider_lock:
        if _provider is None:
            _provider = build_provider(settings.PIWARDEN_KEYS)
        return _provider


def build_provider(spec: str) -> KeyProvider:
    scheme, _, rest = spec.partition(":")
    if scheme == "file" and rest:
        return LocalKeysetProvider(Path(rest))
    raise VaultUnavailable(f"PIWARDEN_KEYS={spec!r}: only 'file:<directory>' is supported by this build")


def reset_provider() -> None:
    """Forget the cached provider (after settings change, in tests and commands)."""
    global _provider  # noqa: PLW0603  # see get_provider
    with _provider_lock:
        _provider = None
