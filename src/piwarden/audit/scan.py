"""Check the sealed audit chain a seq range (a *chunk*) at a time, so that chunks can be checked
in parallel and their joins afterwards (``walk``).  ``chain.verify`` drives it.

No Django here: on SQLite the chunks are checked in worker processes that import only this
module (``sqlite_chunk``), each with its own read-only connection.

A chunk's check is exact: ``scan`` is the walk, event by event, that names the first break.
What runs first is a cheaper check of the whole chunk (``sqlite_chunk``: the hashed bytes of
every event in one column, the stored hashes in one string); only a chunk that fails it is
walked event by event to name the event, with the same statement the sealer hashed.

A chunk that a checkpoint covers (``AuditCheckpoint``: a run of events checked one by one when
it was made, and the SHA-256 of their stored columns) is checked cheaper still: one hash of the
run's columns, as one string (``run_text``), against the checkpoint's digest.  When that does not
match, the chunk is walked as any other to name the event; if the walk finds every event in
order (the chain rewritten with its hashes recomputed), the checkpoint names the run's first.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

GENESIS = "0" * 64
SEP = "\x1f"
RS = b"\x1e"  # between the events' texts in one chunk's summary, and in a checkpoint's run

# One sealed event as ``scan`` takes it: seq, id, prev_hash, stored hash, and the hash of its
# stored columns (None when a column that is never empty is NULL).
Row = tuple[int, int, str | None, str | None, str | None]


@dataclass(frozen=True)
class Break:
    """The first event that does not verify, and why."""

    event_id: int
    seq: int | None
    why: str

    def __str__(self) -> str:
        where = f"seq {self.seq} (id {self.event_id})" if self.seq is not None else f"unsealed id {self.event_id}"
        return f"audit event {where}: {self.why}"


class Chunk(NamedTuple):
    """What the walk needs of one seq range: its first event (seq, id, prev_hash, whether a
    column that is never empty is NULL), its last (seq, id, hash), how many events it holds,
    and the first break inside it (the first event's link to the one before not checked)."""

    events: int
    first: tuple[int, int, str | None, bool] | None
    last: tuple[int, int, str | None] | None
    broken: Break | None


def link_break(seq: int, pk: int, prev: str | None, expected: int | None, computed: str | None) -> Break:
    if computed is None:
        return Break(pk, seq, "a column that is never empty is NULL (the event was rewritten)")
    if seq != expected:
        return Break(pk, seq, f"seq {expected} is missing before it (an event was deleted or renumbered)")
    return Break(pk, seq, "its prev_hash is not the hash of the event before it (an event was deleted or moved)")


def scan(rows: Iterable[Row], head: tuple[int, str], prev: str | None, expected: int | None) -> Break | None:
    """The first break among ``rows`` (in seq order), the first one following ``prev`` and
    ``expected`` (both None: its link is checked by the caller)."""
    head_seq, head_hash = head
    for seq, pk, prev_hash, stored, computed in rows:
        if computed is None or (expected is not None and (seq != expected or prev_hash != prev)):
            return link_break(seq, pk, prev, expected, computed)
        if computed != stored:
            return Break(pk, seq, "its hash does not match its stored columns (the event was rewritten)")
        if seq == head_seq and stored != head_hash:
            return Break(pk, seq, "its hash is not the one the chain head recorded (the chain was rewritten)")
        prev, expected = stored, seq + 1
    return None


@dataclass
class Walk:
    """Where the walk over the chunks is: the hash and seq the next event must follow."""

    prev: str = GENESIS
    expected: int = 1
    last_pk: int = 0


def walk(chunks: Iterable[Chunk], state: Walk, progress: Callable[[int], None] | None) -> Break | None:
    """Join the chunks in seq order: each one's first event must follow the last of the one before."""
    for chunk in chunks:
        if chunk.first is None or chunk.last is None:
            continue
        seq, pk, prev_hash, null = chunk.first
        if not null and (seq != state.expected or prev_hash != state.prev):
            return link_break(seq, pk, state.prev, state.expected, "")
        if chunk.broken is not None:
            return chunk.broken
        last_seq, state.last_pk, last_hash = chunk.last
        state.prev, state.expected = str(last_hash), last_seq + 1
        if progress is not None:
            progress(chunk.events)
    return None


class SqliteQueries(NamedTuple):
    """The statements of a chunk, each taking (lo, hi): built by ``chain`` from the model."""

    first: str  # seq, id, prev_hash, (hashed text IS NULL) of the first event
    last: str  # seq, id, hash of the last event
    # count, min(seq), max(seq), NULLs in never-empty columns, the stored hashes each followed
    # by SEP, and the hashed bytes of the events (NULL columns as empty) separated by RS; in the
    # order of the seq index (an order it does not keep fails the check: then ``exact`` decides)
    summary: str
    exact: str  # seq, id, prev_hash, hash, the hashed bytes as the sealer built them (NULL if any is)
    # count, min(seq), max(seq), NULLs in never-empty columns (the hash included), and the run's
    # text: each event's hashed bytes, SEP and its hash, in seq order, separated by RS
    run: str
    at: str  # the hash of the event with seq = ?, twice (?, ?) for the range's shape


def run_digest(rows: Iterable[tuple[Any, ...]]) -> str:
    """The digest a checkpoint keeps of a run, from the ``exact`` rows (seq, id, prev_hash, hash,
    hashed bytes) that were checked one by one: the same bytes as ``run``'s text."""
    texts = [bytes(text) + SEP.encode() + str(stored).encode() for _, _, _, stored, text in rows]
    return hashlib.sha256(RS.join(texts)).hexdigest()


_connections: dict[str, sqlite3.Connection] = {}


def _open(path: str) -> sqlite3.Connection:
    db = _connections.get(path)
    if db is None:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        _connections[path] = db
    return db


def sqlite_chunk(task: tuple[str, SqliteQueries, int, int, tuple[int, str], str | None]) -> Chunk:
    """Check the events with lo <= seq < hi (a worker's task): the database at ``path``, read
    in one transaction so that its statements see one state."""
    path, queries, lo, hi, head, digest = task
    db = _open(path)
    db.execute("BEGIN")
    try:
        return check_chunk(db, queries, lo, hi, head, digest=digest)
    finally:
        db.execute("COMMIT")


CHECKPOINT_BROKEN = (
    "its run of events no longer matches the checkpoint taken of it, though each event follows from "
    "the one before (the chain was rewritten and its hashes recomputed, or the checkpoint was altered)"
)


def check_chunk(
    db: Any, queries: SqliteQueries, lo: int, hi: int, head: tuple[int, str], *, digest: str | None = None
) -> Chunk:
    """One chunk through ``db`` (a DB-API connection or cursor taking ``?``); ``digest``: the
    checkpoint's, when one covers exactly this chunk."""
    first = db.execute(queries.first, (lo, hi)).fetchone()
    if first is None:
        return Chunk(0, None, None, None)
    last = db.execute(queries.last, (lo, hi)).fetchone()
    if digest is None:
        return _check_events(db, queries, (lo, hi), head, (first, last))
    count, low, high, nulls, text = db.execute(queries.run, (lo, hi)).fetchone()
    first_row = (first[0], first[1], first[2], bool(first[3]))
    head_seq, head_hash = head
    if (
        not nulls
        and high - low + 1 == count
        and hashlib.sha256(text or b"").hexdigest() == digest
        and (not low <= head_seq <= high or db.execute(queries.at, (head_seq,)).fetchone()[0] == head_hash)
    ):
        return Chunk(count, first_row, tuple(last), None)
    walked = _check_events(db, queries, (lo, hi), head, (first, last))
    if walked.broken is None and not first_row[3]:
        return walked._replace(broken=Break(first[1], first[0], CHECKPOINT_BROKEN))
    return walked


def _check_events(db: Any, queries: SqliteQueries, span: tuple[int, int], head: tuple[int, str], ends: Any) -> Chunk:
    first, last = ends
    count, low, high, nulls, hashes, joined = db.execute(queries.summary, span).fetchone()
    texts = (joined or b"").split(RS)  # more pieces than events when a text holds RS: then ``exact`` decides
    first_row = (first[0], first[1], first[2], bool(first[3]))
    if not nulls and high - low + 1 == count == len(texts) and _holds(texts, hashes or "", low, head):
        return Chunk(count, first_row, tuple(last), None)
    rows = db.execute(queries.exact, span).fetchall()
    sha256 = hashlib.sha256
    exact = ((s, pk, p, h, None if t is None else sha256(t).hexdigest()) for s, pk, p, h, t in rows)
    return Chunk(count, first_row, tuple(last), scan(exact, head, None, None))


def _holds(texts: Sequence[bytes], hashes: str, low: int, head: tuple[int, str]) -> bool:
    """Whether every event's bytes hash to its stored hash, each (but the first) starts with
    the hash before it and a separator, and the head's event carries the head's hash.
    ``hashes``: the stored hashes, each followed by SEP, in seq order."""
    sha256 = hashlib.sha256
    computed = SEP.join([sha256(t).hexdigest() for t in texts]) + SEP
    if computed != hashes:
        return False
    links = b"".join([t[:65] for t in texts[1:]])
    if links != hashes[:-65].encode():
        return False
    head_seq, head_hash = head
    at = (head_seq - low) * 65
    return not 0 <= at < len(hashes) or hashes[at : at + 64] == head_hash
