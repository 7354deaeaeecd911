"""The audit checkpoints' signing key (Ed25519, a Tink keyset beside the KEK, never in the database).

A checkpoint (``AuditCheckpoint``) says: the sealed events seq ``first`` to ``last`` hash, as one
string, to ``digest``, and the last of them carries the hash ``last_hash``.  Signed, and written
to the export file too (``chain.export_checkpoint``), it lets someone who holds only the public
key and that file tell that the database's log was cut short or rewritten with its hashes
recomputed, which the chain alone cannot show to someone who can write the database.

* ``audit-signing.json`` (0600): the private keyset, made by ``piwarden keys init``; the site
  never makes one on its own (a key made in silence would sign a rewritten log).
* ``audit-signing.public.json``: its public keyset, for whoever verifies an exported file.
* Rotation (``piwarden audit rotate-signing-key``) adds a key and makes it primary; the old
  keys stay, so checkpoints signed before still verify (Tink's signature names its key).

A missing or unreadable key fails closed: no checkpoint is signed (``verify`` then checks those
events one by one), and a checkpoint whose signature does not verify is a break.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import NamedTuple

import tink
from django.conf import settings
from tink import secret_key_access, signature

from piwarden.vault.keys import PUBLIC_SIGNING_FILE as PUBLIC_FILE
from piwarden.vault.keys import (
    SIGNING_FILE,
    VaultUnavailable,
    _replace,
    publish_signing_key,
    read_keyset,
    with_new_primary,
)

CONTEXT = "piwarden audit checkpoint v1"

_lock = threading.Lock()
_signers: dict[tuple[Path, int], signature.PublicKeySign] = {}  # by file and its mtime: a rotation is seen


def directory() -> Path:
    """The keys directory of ``settings.PIWARDEN_KEYS`` (``file:<dir>``)."""
    scheme, _, rest = str(settings.PIWARDEN_KEYS).partition(":")
    if scheme != "file" or not rest:
        raise VaultUnavailable(f"PIWARDEN_KEYS={settings.PIWARDEN_KEYS!r}: no directory for the audit signing key")
    return Path(rest)


def message(first_seq: int, last_seq: int, digest: str, last_hash: str) -> bytes:
    """What a checkpoint's signature covers."""
    return "\x1f".join([CONTEXT, str(first_seq), str(last_seq), digest, last_hash]).encode()


def _private(where: Path) -> tink.KeysetHandle:
    return read_keyset(where / SIGNING_FILE, hint=" (run: piwarden keys init)")


def sign(first_seq: int, last_seq: int, digest: str, last_hash: str) -> str:
    """The checkpoint's signature, base64 (VaultUnavailable when the key is not at hand)."""
    return base64.b64encode(_signer().sign(message(first_seq, last_seq, digest, last_hash))).decode()


def document_message(context: str, document: bytes) -> bytes:
    """What a signed document's signature covers: its context (what it is) and its bytes.

    The context keeps a document from passing for a checkpoint or another kind of document."""
    return context.encode() + b"\x1e" + document


def sign_document(context: str, document: bytes) -> str:
    """A signed record other than a checkpoint (an access review), base64, under the same key."""
    return base64.b64encode(_signer().sign(document_message(context, document))).decode()


# A cut of the log (``AuditCut``): the events up to ``cut_seq`` deleted, the chain going on from the
# hash ``cut_hash`` that the checkpoint (``checkpoint_first_seq``, ``checkpoint_digest``) ends with.
CUT_CONTEXT = "piwarden audit cut v1"


class CutFields(NamedTuple):
    """What a cut's signature covers; ``made_at``: ISO 8601, UTC, to the second."""

    cut_seq: int
    cut_hash: str
    checkpoint_first_seq: int
    checkpoint_digest: str
    made_at: str


def cut_document(cut: CutFields) -> bytes:
    return "\x1f".join(map(str, cut)).encode()


def sign_cut(cut: CutFields) -> str:
    """The cut's signature, base64 (VaultUnavailable when the key is not at hand)."""
    return sign_document(CUT_CONTEXT, cut_document(cut))


def _signer() -> signature.PublicKeySign:
    where = directory()
    try:
        stamp = (where, (where / SIGNING_FILE).stat().st_mtime_ns)
    except OSError:
        stamp = (where, 0)  # _private says what is wrong
    with _lock:
        signer = _signers.get(stamp)
        if signer is None:
            signer = _signers[stamp] = _private(where).primitive(signature.PublicKeySign)
    return signer


class Verifier:
    """Checks checkpoints' signatures against a public keyset (the keys directory's, or a file)."""

    def __init__(self, public: Path | None = None) -> None:
        path = public or directory() / PUBLIC_FILE
        try:
            text = path.read_text(encoding="utf-8")
            handle = tink.json_proto_keyset_format.parse_without_secret(text)
        except OSError as exc:
            raise VaultUnavailable(f"the audit public key {path} cannot be read: {exc.strerror}") from None
        except tink.TinkError as exc:
            raise VaultUnavailable(f"{path} is not a valid Tink public keyset: {exc}") from None
        self._verify = handle.primitive(signature.PublicKeyVerify)

    def holds(self, signed: str, first_seq: int, last_seq: int, digest: str, last_hash: str) -> bool:
        return self._holds(signed, message(first_seq, last_seq, digest, last_hash))

    def holds_document(self, signed: str, context: str, document: bytes) -> bool:
        return self._holds(signed, document_message(context, document))

    def holds_cut(self, signed: str, cut: CutFields) -> bool:
        return self.holds_document(signed, CUT_CONTEXT, cut_document(cut))

    def _holds(self, signed: str, data: bytes) -> bool:
        try:
            signed_bytes = base64.b64decode(signed, validate=True)
            self._verify.verify(signed_bytes, data)
        except (tink.TinkError, ValueError):
            return False
        return True


def rotate() -> int:
    """Add a new Ed25519 key, make it primary, publish the public keyset; return the key's id."""
    where = directory()
    handle, key_id = with_new_primary(_private(where), signature.signature_key_templates.ED25519)
    _replace(where / SIGNING_FILE, tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
    publish_signing_key(where, handle)
    forget()
    return key_id


def forget() -> None:
    """Drop the cached signers (after a rotation, and in tests)."""
    with _lock:
        _signers.clear()
