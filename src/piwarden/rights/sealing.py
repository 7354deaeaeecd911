"""Archive files at rest: sealed under the person's own data key, bound to the person and the archive.

An archive holds everything about a person, so it is never written in plaintext (invariant 5).
Each file is::

    MAGIC | length of the wrapped key (4 bytes, big-endian) | wrapped key | Tink streaming AEAD ciphertext

The content key is a fresh Tink streaming AEAD keyset (AES256-GCM-HKDF, 4 KB segments: each
segment authenticated, reordering and truncation detected, memory bounded by one segment).  It is
stored in the file's header wrapped by the person's data key (``serialize_encrypted`` under the
person's AEAD, as the vault wraps data keys under the KEK).  Both layers take the same associated
data, which names the person, the archive and the part (the zip or its readable page): a file
copied over another archive's name, or opened for another person, fails to open, and destroying
the person's data key (crypto-shredding) makes every archive of theirs unreadable wherever a copy
survives.

The temporary parts written while an archive is built (:class:`Spool`) stay in memory while they
are small; a large one is sealed in an anonymous file, under a key that exists only in the building
process's memory.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import tink
from django.conf import settings
from tink import aead, streaming_aead

streaming_aead.register()

STORE = "rights:exports"  # its name in policy/declaration.toml (RightsConfig.file_stores)
MAGIC = b"PIWARDEN-ARCHIVE/1\n"
ARCHIVE_SUFFIX = ".zip.sealed"
PAGE_SUFFIX = ".html.sealed"
CHUNK = 64 * 1024
# 4 KB segments: a stream holds one segment's buffers, and setting up 1 MB ones cost ~0.4 ms of
# CPU per file (fresh pages) where a typical archive is tens of kilobytes; 16 bytes of tag per
# 4 KB (0.4 %) is the price for a large one.  A file names its own key, so both sizes open.
_TEMPLATE = streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_4KB
_LENGTH = 4
SPOOL_IN_MEMORY = 1024 * 1024  # bytes of a Spool kept in memory before it moves to a sealed file
_SPOOL_AD = b"piwarden/spool"


class SealedArchiveInvalid(Exception):
    """The file does not open with this person's key for this archive: another person's, moved, or damaged."""


def directory() -> Path:
    """The exports directory (owner-only), created on first use."""
    path = Path(settings.PIWARDEN_EXPORTS_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def archive_path(archive_id: uuid.UUID) -> Path:
    return directory() / f"{archive_id}{ARCHIVE_SUFFIX}"


def page_path(archive_id: uuid.UUID) -> Path:
    return directory() / f"{archive_id}{PAGE_SUFFIX}"


def _ad(person_id: uuid.UUID, archive_id: uuid.UUID, part: str) -> bytes:
    return b"piwarden/archive/v1|" + person_id.bytes + archive_id.bytes + b"|" + part.encode()


class _Unclosing(io.RawIOBase):
    """A view of a file that Tink's streams may close without closing the file."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._file.write(data)

    def readinto(self, buffer: Any) -> int:
        data = self._file.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._file.flush()
        super().close()


class SealedWriter:
    """Writes one sealed part (``part``: "zip" or "page") of an archive, from nothing to a synced file."""

    def __init__(self, path: Path, *, key: aead.Aead, person_id: uuid.UUID, archive_id: uuid.UUID, part: str) -> None:
        ad = _ad(person_id, archive_id, part)
        handle = tink.new_keyset_handle(_TEMPLATE)
        wrapped = tink.proto_keyset_format.serialize_encrypted(handle, key, ad)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.path = path
        self._file = os.fdopen(fd, "wb")
        self._file.write(MAGIC + len(wrapped).to_bytes(_LENGTH, "big") + wrapped)
        primitive = handle.primitive(streaming_aead.StreamingAead)
        self._stream = primitive.new_encrypting_stream(_Unclosing(self._file), ad)

    def write(self, data: bytes) -> int:
        written: int = self._stream.write(data)
        return written

    def close(self) -> None:
        """Finish the ciphertext (its last segment says it is the last) and put it on disk."""
        self._stream.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abandon(self) -> None:
        """Stop and delete what was written (a build that failed)."""
        try:
            self._stream.close()
        finally:
            self._file.close()
            self.path.unlink(missing_ok=True)


def open_sealed(
    path: Path, *, key: aead.Aead, person_id: uuid.UUID, archive_id: uuid.UUID, part: str
) -> Iterator[bytes]:
    """The plaintext of a sealed part, in chunks; the content key is opened before this returns.

    ``key`` is the person's data key (``vault.crypto.aead_for``), opened under the gate's permit.
    Raises :class:`SealedArchiveInvalid` at once when the key does not open (another person's
    key, a file moved from another archive), and while reading when a segment fails to
    authenticate (a damaged or cut file).  ``FileNotFoundError`` when there is no file.
    """
    ad = _ad(person_id, archive_id, part)
    file = path.open("rb")
    try:
        header = file.read(len(MAGIC) + _LENGTH)
        if len(header) != len(MAGIC) + _LENGTH or not header.startswith(MAGIC):
            raise SealedArchiveInvalid("not a sealed archive")
        wrapped = file.read(int.from_bytes(header[len(MAGIC) :], "big"))
        try:
            handle = tink.proto_keyset_format.parse_encrypted(wrapped, key, ad)
        except tink.TinkError:
            raise SealedArchiveInvalid("the archive's key does not open with this key for this archive") from None
        primitive = handle.primitive(streaming_aead.StreamingAead)
    except BaseException:
        file.close()
        raise
    return _plaintext(file, primitive, ad)


def _plaintext(file: IO[bytes], primitive: streaming_aead.StreamingAead, ad: bytes) -> Iterator[bytes]:
    with file:
        try:
            with primitive.new_decrypting_stream(_Unclosing(file), ad) as reader:
                while chunk := reader.read(CHUNK):
                    yield chunk
        except tink.TinkError:
            raise SealedArchiveInvalid("a segment of the archive failed to authenticate") from None


class Spool:
    """A temporary part of an archive being built: in memory while small, then sealed in a file.

    Up to :data:`SPOOL_IN_MEMORY` bytes stay in the process's memory (a typical person's
    ``data.json`` and page are tens of kilobytes: no file, no key, no stream to set up).  Past it,
    what was written moves to an anonymous file (``TemporaryFile``: never linked on Linux) in the
    exports directory, sealed under a key that exists only in memory, so memory stays bounded for
    a person with 100 000 records; the key is gone when the process is, so nothing readable is
    left by a crash either way.
    """

    def __init__(self, limit: int = SPOOL_IN_MEMORY) -> None:
        self._limit = limit
        self._buffer: bytearray | None = bytearray()
        self._file: IO[bytes] | None = None
        self._primitive: streaming_aead.StreamingAead | None = None
        self._stream: Any = None

    def write(self, data: bytes) -> None:
        if self._buffer is None:
            self._stream.write(data)
            return
        self._buffer += data
        if len(self._buffer) > self._limit:
            self._spill(self._buffer)

    def _spill(self, buffer: bytearray) -> None:
        self._file = tempfile.TemporaryFile(dir=directory())  # noqa: SIM115  # closed by close()
        self._primitive = tink.new_keyset_handle(_TEMPLATE).primitive(streaming_aead.StreamingAead)
        self._stream = self._primitive.new_encrypting_stream(_Unclosing(self._file), _SPOOL_AD)
        self._stream.write(bytes(buffer))
        self._buffer = None

    @property
    def in_memory(self) -> bool:
        """Whether what was written is still in memory only (not moved to a sealed file)."""
        return self._buffer is not None

    def chunks(self) -> Iterator[bytes]:
        """What was written, decrypted, in chunks (writing ends here)."""
        if self._buffer is not None:
            view = memoryview(self._buffer)
            for start in range(0, len(view), CHUNK):
                yield bytes(view[start : start + CHUNK])
            return
        assert self._file is not None  # noqa: S101  # spilled
        assert self._primitive is not None  # noqa: S101
        self._stream.close()
        self._file.seek(0)
        with self._primitive.new_decrypting_stream(_Unclosing(self._file), _SPOOL_AD) as reader:
            while chunk := reader.read(CHUNK):
                yield chunk

    def close(self) -> None:
        self._buffer = None
        if self._stream is not None and not self._stream.closed:
            self._stream.close()
        if self._file is not None:
            self._file.close()


def delete_files(archive_ids: Iterable[uuid.UUID]) -> int:
    """Delete the sealed parts of these archives; returns how many files were deleted."""
    deleted = 0
    for archive_id in archive_ids:
        for path in (archive_path(archive_id), page_path(archive_id)):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            deleted += 1
    return deleted


def stored_ids(*, unchanged_since: float | None = None) -> set[uuid.UUID]:
    """The archive ids that have a file in the exports directory (names not ours are left alone);
    with ``unchanged_since`` (a POSIX time), only those whose files were last written before it."""
    found: set[uuid.UUID] = set()
    for path in directory().iterdir():
        for suffix in (ARCHIVE_SUFFIX, PAGE_SUFFIX):
            if not path.name.endswith(suffix):
                continue
            try:
                archive_id = uuid.UUID(path.name.removesuffix(suffix))
                written = path.stat().st_mtime
            except (ValueError, FileNotFoundError):
                continue
            if unchanged_since is None or written < unchanged_since:
                found.add(archive_id)
    return found
