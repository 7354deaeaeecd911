"""The erasure ledger: every erasure, written apart from the database, so that a restore can replay it.

Why
---
Crypto-shredding destroys a person's wrapped data key in the database.  A backup of the database
taken before the erasure still holds that wrapped key, and the key-encryption key (kept apart,
and still in place) opens it: restoring the backup makes the person readable again.  Invariant 6
says an erasure survives a restore, so every erasure is also written here, to a file that is not
part of the database (``PIWARDEN_ERASURE_LEDGER``, by default ``erasures.ledger`` in the data
directory; put it on storage that database restores do not roll back).  After a restore,
``piwarden retention replay-erasures`` erases again everyone the ledger names and the database
does not show as erased; start-up warns until it has run (:func:`warning`).

What a line holds
-----------------
One JSON object per line, no personal data: ``seq`` (1, 2, …), ``person`` (the Person's random
id, which after the erasure leads to timestamps only), ``data_key`` (the id of the destroyed data
key), ``erased_at`` (ISO 8601), ``prev`` (the previous line's hash; 64 zeros for the first) and
``hash`` = SHA-256 over ``prev|seq|person|data_key|erased_at``.  An edited, reordered or removed
line breaks the chain, and a line cut short breaks its JSON: :func:`entries` names the first bad
line.  Cutting whole lines off the end leaves a valid chain; the cross-check against the database
(:func:`compare`) catches it for every erasure the database still shows.

When it is written
------------------
Inside the erasure's transaction, before the commit, fsync'd (:func:`append_many`, called by
``people.actions.shred_people`` with the erasures of its transaction, one or a batch): if the
ledger cannot be written, the erasure fails and rolls back, so a committed erasure is never
missing from the ledger.  The other order (append after
the commit) leaves a window in which a crash loses the entry, and the usual reason to restore a
backup is exactly such a crash.  The price of this order is an entry for an erasure whose
transaction rolled back after the append (a failed commit): replay checks the database, finds
that person not erased, and erases them.  That completes an erasure someone had started for a
reason (a request, a retention deadline) and failed to commit; it never touches anyone else.
A line torn by a crash during the append belongs to a transaction that never committed (the
fsync had not returned): the next append cuts it off.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from piwarden.people.models import Person

GENESIS = "0" * 64
_TAIL_BYTES = 4096  # a line is about 230 bytes: the last one is within this many from the end
_BATCH = 500  # person ids per database query when comparing


class LedgerDamaged(Exception):
    """The ledger's chain is broken: a line was edited, reordered, removed or cut short."""


class LedgerUnavailable(Exception):
    """The ledger cannot be written: the erasure must not commit without its entry."""


@dataclass(frozen=True)
class Entry:
    seq: int
    person: uuid.UUID
    data_key: uuid.UUID
    erased_at: datetime.datetime
    prev: str
    hash: str


def path() -> Path:
    return Path(settings.PIWARDEN_ERASURE_LEDGER)


def _digest(prev: str, seq: int, person: str, data_key: str, erased_at: str) -> str:
    return hashlib.sha256(f"{prev}|{seq}|{person}|{data_key}|{erased_at}".encode("ascii")).hexdigest()


def _line(seq: int, person: uuid.UUID, data_key: uuid.UUID, erased_at: datetime.datetime, prev: str) -> bytes:
    when = erased_at.isoformat()
    record = {
        "seq": seq,
        "person": str(person),
        "data_key": str(data_key),
        "erased_at": when,
        "prev": prev,
        "hash": _digest(prev, seq, str(person), str(data_key), when),
    }
    return (json.dumps(record, separators=(",", ":")) + "\n").encode("ascii")


def _parse(raw: bytes, number: int, prev: str) -> Entry:
    """One line, checked against its predecessor's hash; LedgerDamaged names the line otherwise."""
    try:
        record = json.loads(raw)
        entry = Entry(
            seq=int(record["seq"]),
            person=uuid.UUID(record["person"]),
            data_key=uuid.UUID(record["data_key"]),
            erased_at=datetime.datetime.fromisoformat(record["erased_at"]),
            prev=str(record["prev"]),
            hash=str(record["hash"]),
        )
        expected = _digest(entry.prev, entry.seq, record["person"], record["data_key"], record["erased_at"])
    except (ValueError, KeyError, TypeError):
        raise LedgerDamaged(f"line {number} is not a ledger entry (cut short or edited)") from None
    if entry.seq != number:
        raise LedgerDamaged(f"line {number} carries number {entry.seq} (a line was removed or reordered)")
    if entry.prev != prev:
        raise LedgerDamaged(f"line {number} does not follow line {number - 1} (a line was removed or changed)")
    if entry.hash != expected:
        raise LedgerDamaged(f"line {number} was changed after it was written")
    return entry


def entries(ledger: Path | None = None) -> Iterator[Entry]:
    """Every entry, in order, the chain checked as it is read; nothing when there is no ledger yet."""
    ledger = ledger or path()
    try:
        handle = ledger.open("rb")
    except FileNotFoundError:
        return
    with handle:
        prev = GENESIS
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                # A torn last line: a crash during an append whose transaction never committed.
                continue
            entry = _parse(raw, number, prev)
            prev = entry.hash
            yield entry


def _last_line(fd: int) -> tuple[bytes, int]:
    """The last complete line of the file and the size up to its end (a torn tail is after it)."""
    size = os.lseek(fd, 0, os.SEEK_END)
    start = max(0, size - _TAIL_BYTES)
    os.lseek(fd, start, os.SEEK_SET)
    tail = os.read(fd, size - start)
    end = tail.rfind(b"\n")
    if end < 0:
        if start:
            raise LedgerDamaged(f"no line ends in the last {_TAIL_BYTES} bytes")
        return b"", 0
    begin = tail.rfind(b"\n", 0, end) + 1
    return tail[begin : end + 1], start + end + 1


_deferred = threading.local()


@contextlib.contextmanager
def synced_once() -> Iterator[None]:
    """Appends inside the block are fsync'd together when it ends (one fsync, not one per erasure).

    For a job that erases many people in one transaction (the retention sweep's batches): the
    block must end inside that transaction, before its commit, so that the module's rule holds (a
    committed erasure is in the ledger on disk).  A block left by an exception syncs nothing: its
    transaction rolls back, and replay ignores entries of erasures that did not commit.
    """
    outer = getattr(_deferred, "paths", None)
    if outer is not None:  # nested: the outer block syncs
        yield
        return
    _deferred.paths = set()
    try:
        yield
        for written in sorted(_deferred.paths):
            try:
                fd = os.open(written, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise LedgerUnavailable(f"the erasure ledger {written} cannot be written ({exc.strerror})") from None
    finally:
        _deferred.paths = None


def append(person: uuid.UUID, data_key: uuid.UUID, erased_at: datetime.datetime) -> Entry:
    """Write one erasure to the ledger and fsync it; raise LedgerUnavailable if it cannot be written.

    Called inside the erasure's transaction (see the module's docstring).  An exclusive lock on
    the file makes concurrent writers (web workers, the task worker, commands) take turns.  Inside
    :func:`synced_once` the fsync waits for the end of the block.
    """
    return append_many([(person, data_key, erased_at)])[0]


def append_many(erasures: Sequence[tuple[uuid.UUID, uuid.UUID, datetime.datetime]]) -> list[Entry]:
    """:func:`append` for several erasures (person, data key, when) of one transaction: one lock,
    one read of the last line, one write of all their lines and one fsync (or none, inside
    :func:`synced_once`); the chain runs through them in order."""
    if not erasures:
        return []
    ledger = path()
    try:
        ledger.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        created = not ledger.exists()
        fd = os.open(ledger, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LedgerUnavailable(f"the erasure ledger {ledger} cannot be opened ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        last, end = _last_line(fd)
        if end != os.lseek(fd, 0, os.SEEK_END):
            os.ftruncate(fd, end)  # a torn line of an append that never committed
        if last:
            record = json.loads(last)
            previous = _parse(last, int(record["seq"]), str(record["prev"]))  # its own hash checked
            seq, prev = previous.seq + 1, previous.hash
        else:
            seq, prev = 1, GENESIS
        lines, made = [], []
        for offset, (person, data_key, erased_at) in enumerate(erasures):
            lines.append(_line(seq + offset, person, data_key, erased_at, prev))
            digest = _digest(prev, seq + offset, str(person), str(data_key), erased_at.isoformat())
            made.append(Entry(seq + offset, person, data_key, erased_at, prev, digest))
            prev = digest
        os.lseek(fd, 0, os.SEEK_END)
        data = b"".join(lines)
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(0, "short write")
        deferred = getattr(_deferred, "paths", None)
        if deferred is None:
            os.fsync(fd)
        else:
            deferred.add(ledger)
    except (OSError, LedgerDamaged, ValueError, KeyError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise LedgerUnavailable(f"the erasure ledger {ledger} cannot be written ({why})") from None
    finally:
        os.close(fd)  # releases the lock
    if created:
        _sync_directory(ledger.parent)
    return made


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the ledger against the database ----------------------------------------------------------


@dataclass
class Comparison:
    """What the ledger says the database should show, and what it shows."""

    entries: int = 0
    persons: int = 0  # distinct persons among the entries
    unerased: list[Entry] = field(default_factory=list)  # persons the database holds but has not erased
    absent: int = 0  # persons the database does not hold (restored from before they came)
    unrecorded: list[uuid.UUID] = field(default_factory=list)  # erasures the ledger lacks
    damaged: str | None = None


def _erased_among(ids: list[uuid.UUID]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """(held, erased): which of these persons the database holds, and which of those it erased."""
    rows = list(Person.objects.filter(pk__in=ids).values_list("pk", "erased_at"))
    held = {pk for pk, _ in rows}
    return held, {pk for pk, erased_at in rows if erased_at is not None}


def _erased_ids() -> Iterator[uuid.UUID]:
    yield from Person.objects.filter(erased_at__isnull=False).values_list("pk", flat=True).iterator(chunk_size=2000)


def compare(ledger: Path | None = None, progress: Callable[[int], None] | None = None) -> Comparison:
    """Read the whole ledger (the chain checked) and look each person up in the database, in batches."""
    result = Comparison()
    latest: dict[uuid.UUID, Entry] = {}
    try:
        for entry in entries(ledger):
            result.entries += 1
            latest[entry.person] = entry
    except LedgerDamaged as exc:
        result.damaged = str(exc)
    persons = list(latest)
    result.persons = len(persons)
    for start in range(0, len(persons), _BATCH):
        batch = persons[start : start + _BATCH]
        held, erased = _erased_among(batch)
        result.absent += len(batch) - len(held)
        result.unerased += [latest[p] for p in batch if p in held and p not in erased]
        if progress:
            progress(len(batch))
    result.unrecorded = [pk for pk in _erased_ids() if pk not in latest]
    return result


def warning(ledger: Path | None = None) -> str | None:
    """One line for start-up when the ledger and the database disagree, saying what to do; else None."""
    where = ledger or path()
    try:
        result = compare(ledger)
    except OSError as exc:
        return (
            f"the erasure ledger {where} cannot be read ({exc.strerror}): erasures cannot be checked against "
            "this database; fix the file's owner or mode (or PIWARDEN_ERASURE_LEDGER)."
        )
    if result.damaged:
        return (
            f"the erasure ledger {where} is damaged: {result.damaged}. Restore it from its own backup, then run "
            "`piwarden retention replay-erasures`."
        )
    if result.unerased:
        return (
            f"the erasure ledger {where} names {len(result.unerased)} person(s) this database has not erased "
            "(restored from an earlier backup?): their data is readable again. Run "
            "`piwarden retention replay-erasures` now."
        )
    if result.unrecorded:
        return (
            f"this database holds {len(result.unrecorded)} erasure(s) the erasure ledger {where} lacks (erased "
            "before the ledger existed, or the ledger was replaced): run `piwarden retention replay-erasures` to "
            "record them."
        )
    return None
