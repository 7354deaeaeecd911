"""Seal and verify the audit chain.

**Seal.**  ``seal()`` takes the events that requests appended (``seq`` NULL), in ``id`` order,
checks each one's content digest, and chains them: ``seq`` = head + 1, ``prev_hash`` = the
head's hash, ``hash`` = SHA-256 of the *stored* row (below).  Only the sealer locks the
:class:`AuditChainHead` row (its first statement is an UPDATE of it, which on PostgreSQL waits
for another sealer and on SQLite runs in an IMMEDIATE transaction), so two sealers in two
processes take turns and requests never wait for either.  A pending event whose digest no longer
matches its content is left unsealed (``verify`` names it) and logged; the others are sealed.

**The hashed bytes.**  ``hash`` covers the row as the database returns it, joined by the unit
separator (U+001F, which JSON text escapes and ``record_event`` strips from free text, so no
column can borrow from its neighbour)::

    prev_hash ␟ seq ␟ id ␟ digest ␟ occurred_at ␟ event_type ␟ actor_kind ␟ actor ␟ person
    ␟ purpose ␟ fields ␟ reason ␟ extra

rendered by one SQL expression per backend (``_render``), so that ``verify`` can hash what is
stored without loading events through the ORM: on SQLite the stored text as is, on PostgreSQL
the canonical text of each value (and the hash is computed by the database itself).  A chain is
therefore tied to its backend: a copy to another one is verified before it, not after.

**Verify.**  ``verify()`` walks sealed events by seq (hash, link to the predecessor, no gap, and
the head matching the last one, so that a truncated tail is seen), then the pending events by id
(digest against content, no half-sealed row), and returns the first :class:`Break` or None.
The hashed bytes and the digests are unchanged: only the way they are read is new.

The walk over sealed events goes a seq range (a chunk, ``VERIFY_CHUNK`` events) at a time:
each chunk is checked on its own, its first event's link to the one before left out, and the
chunks are joined in order (``scan.walk``), so the first break named is the one the event-by-
event walk names.  On SQLite the chunks go to forked worker processes (one per core), each
reading the chunk in one statement (``format()`` renders the hashed bytes, ``scan``); on
PostgreSQL the database hashes each chunk and returns its first event and first break, over
one connection per core.  Inside a transaction (a test's) the chunks are checked one after the
other through its connection, since other connections do not see its rows.

**Checkpoints.**  Once ``CHECKPOINT_SPAN`` more events are sealed, the sealer checks that run
event by event and keeps the SHA-256 of its stored columns (each event's hashed bytes, ␟ and its
hash; events joined by U+001E) as an :class:`AuditCheckpoint`.  ``verify`` then checks a
checkpointed run with one hash of one string, read in one statement, instead of one hash per
event: the per-event hashing was most of its cost.  A run that does not match is walked event by
event as before; if every event still follows from the one before (the chain rewritten and its
hashes recomputed, which the events alone cannot show), the run's first event is named.  A
missing checkpoint only means its run is checked event by event.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import cache, partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from piwarden.audit import signing
from piwarden.audit.models import (
    CONTENT_ATTRS,
    CONTENT_FIELDS,
    AuditChainHead,
    AuditCheckpoint,
    AuditCut,
    AuditEvent,
    column_of,
    content_digest,
    digest_of,
)
from piwarden.audit.scan import (
    CHECKPOINT_BROKEN,
    GENESIS,
    SEP,
    Break,
    Chunk,
    SqliteQueries,
    Walk,
    check_chunk,
    run_digest,
    scan,
    sqlite_chunk,
    walk,
)
from piwarden.errors import describe
from piwarden.vault.keys import VaultUnavailable

logger = logging.getLogger("piwarden.audit")

# Events per sealing transaction: on SQLite each one holds the write lock (about 0.1 s for 1000
# here), so a backlog (say, after an upgrade) is sealed in short turns between requests.
SEAL_BATCH = 1000
VERIFY_BATCH = 20000  # pending events read at a time
# Sealed events per chunk of `verify`, and from how many sealed events it is worth starting workers.
VERIFY_CHUNK = 50_000
PARALLEL_FROM = 200_000
# Sealed events per checkpoint: verify hashes a checkpointed run as one string (one SHA-256 call
# instead of one per event); the sealer checks and takes one each time so many are sealed.
CHECKPOINT_SPAN = 10_000
CHECKPOINT_EVERY = datetime.timedelta(minutes=10)
MAX_WORKERS = 4

_reported: set[int] = set()  # pending events already logged as not sealable (log once per process)
_unchecked: set[int] = set()  # runs already logged as not verifying, by first seq (idem)
_unsigned: set[bool] = set()  # the missing signing key already logged (idem)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _col(field: str) -> str:
    return _q(column_of(field))


@cache
def _render(vendor: str, *, with_link: bool) -> str:
    """The SQL expression of the hashed text (with or without the leading prev_hash ␟ seq ␟)."""
    sep = f"'{SEP}'"
    if vendor == "postgresql":
        parts = [
            f"{_col('id')}::text",
            _col("digest"),
            f"to_char({_col('occurred_at')} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
            _col("event_type"),
            _col("actor_kind"),
            f"coalesce({_col('actor')}::text, '')",
            f"coalesce({_col('person')}::text, '')",
            _col("purpose"),
            f"{_col('fields')}::text",
            _col("reason"),
            f"{_col('extra')}::text",
        ]
        link = [_col("prev_hash"), f"{_col('seq')}::text"]
    else:
        parts = [
            _col("id"),
            _col("digest"),
            _col("occurred_at"),
            _col("event_type"),
            _col("actor_kind"),
            f"ifnull({_col('actor')}, '')",
            f"ifnull({_col('person')}, '')",
            _col("purpose"),
            _col("fields"),
            _col("reason"),
            _col("extra"),
        ]
        link = [_col("prev_hash"), _col("seq")]
    return f" || {sep} || ".join([*link, *parts] if with_link else parts)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lock_head() -> tuple[int, str]:
    """Take the sealer's lock (the head row) and return the head's seq and hash."""
    table = _q(AuditChainHead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {_q('seq')} = {_q('seq')} WHERE {_q('id')} = 1")  # noqa: S608  # names from the model
        if cursor.rowcount == 0:  # a fresh (or flushed) database: make the row, then lock it
            AuditChainHead.objects.get_or_create(pk=1)
            cursor.execute(f"UPDATE {table} SET {_q('seq')} = {_q('seq')} WHERE {_q('id')} = 1")  # noqa: S608
        cursor.execute(f"SELECT {_q('seq')}, {_q('hash')} FROM {table} WHERE {_q('id')} = 1")  # noqa: S608
        seq, head_hash = cursor.fetchone()
    return int(seq), str(head_hash)


def pending() -> bool:
    """Whether any event waits to be sealed (one indexed read, no lock)."""
    return AuditEvent.objects.filter(seq__isnull=True).exists()


def seal(limit: int | None = None) -> int:
    """Chain every pending event (at most ``limit``), in batches of one transaction each; return how many."""
    sealed, after = 0, 0
    while limit is None or sealed < limit:
        batch = SEAL_BATCH if limit is None else min(SEAL_BATCH, limit - sealed)
        examined, count, after = _seal_batch(batch, after)
        sealed += count
        if examined < batch:
            break
    checkpoint()
    return sealed


def checkpoint(span: int | None = None, most: int | None = 10, now: datetime.datetime | None = None) -> int:
    """Take checkpoints of sealed events that have none, ``span`` events each (at most ``most``
    of them in this call, None: all; each costs ~50 ms per 10,000 events, so after an upgrade the
    sealer's passes catch up a little at a time), and return how many were made.  Fewer than
    ``span`` events get one too once the first of them is ``CHECKPOINT_EVERY`` old, so that the
    export file never lags the log by more than that (a quiet site's last events included).

    Each run is first checked event by event, and its digest taken from the same read; a run that
    does not verify gets none (logged: ``verify`` names the event).  Each checkpoint is signed
    (``signing``; without the key none is taken) and, once committed, appended to the export file
    (``export_checkpoint``).  Two sealers racing make it once (``first_seq`` is unique)."""
    span = span or CHECKPOINT_SPAN
    made = 0
    while most is None or made < most:
        last = AuditCheckpoint.objects.aggregate(top=Max("last_seq"))["top"] or 0
        head = _head()
        if head is None or head[0] <= last:
            break
        hi = last + 1 + span
        if head[0] - last < span:  # a shorter run, once its first event is CHECKPOINT_EVERY old
            first_at = AuditEvent.objects.filter(seq=last + 1).values_list("occurred_at", flat=True).first()
            if first_at is None or (now or timezone.now()) - first_at < CHECKPOINT_EVERY:
                break
            hi = head[0] + 1
        run = _checked_run(last + 1, hi, head)
        if run is None:
            break
        digest, last_hash = run
        try:
            signed = signing.sign(last + 1, hi - 1, digest, last_hash)
        except VaultUnavailable as exc:
            if not _unsigned:
                _unsigned.add(True)
                logger.error("audit checkpoints are not taken: %s", exc)
            break
        try:
            with transaction.atomic():
                taken = AuditCheckpoint.objects.create(
                    first_seq=last + 1, last_seq=hi - 1, digest=digest, last_hash=last_hash, signature=signed
                )
                transaction.on_commit(partial(export_checkpoint, taken))
        except IntegrityError:  # another sealer took it
            break
        made += 1
    return made


def export_checkpoint(taken: AuditCheckpoint, path: Path | None = None) -> None:
    """Append the checkpoint to the export file (one JSON line, fsync'd), where someone who can
    write the database cannot rewrite it (``settings.PIWARDEN_AUDIT_CHECKPOINTS``).  A failure
    is logged; the checkpoint stays in the database and ``piwarden audit export`` writes it again."""
    line = {
        "first_seq": taken.first_seq,
        "last_seq": taken.last_seq,
        "digest": taken.digest,
        "last_hash": taken.last_hash,
        "signature": taken.signature,
        "made_at": taken.made_at.isoformat(),
    }
    _append(line, f"audit checkpoint seq {taken.first_seq}-{taken.last_seq}", path)


def export_cut(cut: AuditCut, path: Path | None = None) -> None:
    """Append the cut to the export file, after the checkpoint it names (one JSON line with
    ``"cut_seq"``; ``made_at`` as its signature covers it), so that whoever holds the file and the
    public key sees the checkpoints before the cut, the signed cut naming the last of them, then
    the checkpoints after it.  A failure is logged; ``piwarden audit export`` writes it again."""
    line = {
        "cut_seq": cut.cut_seq,
        "cut_hash": cut.cut_hash,
        "checkpoint_first_seq": cut.checkpoint_first_seq,
        "checkpoint_digest": cut.checkpoint_digest,
        "made_at": cut_stamp(cut.made_at),
        "signature": cut.signature,
    }
    _append(line, f"audit cut at seq {cut.cut_seq}", path)


def _append(entry: dict[str, Any], what: str, path: Path | None) -> None:
    path = path or settings.PIWARDEN_AUDIT_CHECKPOINTS
    line = json.dumps(entry, sort_keys=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        logger.error("%s not exported to %s: %s", what, path, exc)


def _checked_run(lo: int, hi: int, head: tuple[int, str]) -> tuple[str, str] | None:
    """The digest of the run lo <= seq < hi and its last event's hash, if every event in it
    verifies and follows the one before it, from one read; else None (and the run is logged,
    once per process)."""
    prev = GENESIS
    if lo > 1:
        prev = AuditEvent.objects.filter(seq=lo - 1).values_list("hash", flat=True).first() or ""
    run: tuple[str, str] | None = None
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        rows = connection.connection.execute(_sqlite_queries().exact, (lo, hi)).fetchall()
        sha256 = hashlib.sha256
        hashed = ((s, pk, p, h, None if t is None else sha256(t).hexdigest()) for s, pk, p, h, t in rows)
        if scan(hashed, head, prev, lo) is None and len(rows) == hi - lo:
            run = run_digest(rows), str(rows[-1][3])
    else:
        with transaction.atomic():
            if not connection.savepoint_ids:  # the outermost block: one snapshot for both reads
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            with connection.cursor() as cursor:
                chunk = _pg_walk(cursor, lo, hi, head)
                cursor.execute(_pg_run_sql(), [lo, hi])
                count, _, _, nulls, computed = cursor.fetchone()
        whole = count == hi - lo and not nulls and chunk.broken is None
        first, last = chunk.first, chunk.last
        if whole and first is not None and first[:3:2] == (lo, prev) and last is not None and last[0] == hi - 1:
            run = computed, str(last[2])
    if run is None and lo not in _unchecked:
        _unchecked.add(lo)
        logger.error("audit events seq %s to %s do not verify: no checkpoint (see `piwarden audit verify`)", lo, hi - 1)
    return run


def _seal_batch(limit: int, after: int) -> tuple[int, int, int]:
    """Seal up to ``limit`` pending events with an id above ``after``: (examined, sealed, last id examined)."""
    table = _q(AuditEvent._meta.db_table)
    with transaction.atomic():
        seq, head_hash = _lock_head()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {_col('id')}, {_render(connection.vendor, with_link=False)} FROM {table} "  # noqa: S608  # names from the model
                f"WHERE {_col('seq')} IS NULL AND {_col('id')} > %s ORDER BY {_col('id')} LIMIT %s",
                [after, limit],
            )
            rows = cursor.fetchall()
        if not rows:
            return 0, 0, after
        loaded = AuditEvent.objects.filter(pk__in=[pk for pk, _ in rows]).values_list("pk", "digest", *CONTENT_ATTRS)
        digests = {pk: (digest, digest_of(tuple(content))) for pk, digest, *content in loaded}
        updates = []
        for pk, tail in rows:
            stored, computed = digests.get(pk, (None, ""))
            if tail is None or stored != computed:
                if pk not in _reported:
                    _reported.add(pk)
                    logger.error(
                        "audit event id %s does not match its digest: left unsealed (see `piwarden audit verify`)", pk
                    )
                continue
            seq += 1
            new_hash = _sha(f"{head_hash}{SEP}{seq}{SEP}{tail}")
            updates.append((seq, head_hash, new_hash, pk))
            head_hash = new_hash
        if updates:
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {table} SET {_col('seq')} = %s, {_col('prev_hash')} = %s, {_col('hash')} = %s "  # noqa: S608
                    f"WHERE {_col('id')} = %s AND {_col('seq')} IS NULL",
                    updates,
                )
            AuditChainHead.objects.filter(pk=1).update(seq=seq, hash=head_hash)
    return len(rows), len(updates), rows[-1][0]


def seal_every(stop: threading.Event, seconds: float = 1.0) -> None:
    """Seal whatever is pending, then again every ``seconds`` until ``stop`` is set (the worker's
    sealer thread).  An idle pass is one indexed read.  A database outage is logged once, waited
    out with a back-off (up to 30 s), and logged again when sealing resumes."""
    wait = seconds
    while not stop.is_set():
        try:
            if pending():
                seal()
        except DatabaseError as exc:
            if wait == seconds:
                logger.warning("audit sealer: cannot reach the database (%s); waiting for it", describe(exc))
            wait = min(wait * 2, 30.0)
            _close()
        else:
            if wait != seconds:
                logger.warning("audit sealer: the database answers again; sealing resumed")
            wait = seconds
        stop.wait(wait)
    _close()


def _close() -> None:
    try:
        connection.close()
    except DatabaseError:  # closing a connection whose server went away can fail too
        connection.connection = None


def count_events() -> int:
    """How many events ``verify`` will check, for its progress bar: the last seq and the pending
    events, two index reads (``count(*)`` of the whole log costs a tenth of the verification)."""
    top = AuditEvent.objects.aggregate(top=Max("seq"))["top"] or 0
    cut = AuditCut.objects.aggregate(cut=Max("cut_seq"))["cut"] or 0
    return max(int(top) - int(cut), 0) + AuditEvent.objects.filter(seq__isnull=True).count()


def verify(
    progress: Callable[[int], None] | None = None,
    *,
    chunk: int = VERIFY_CHUNK,
    workers: int | None = None,
    public: Path | None = None,
) -> Break | None:
    """The first event that breaks the chain or its digest, or None.  ``progress(n)`` hears of each chunk.

    Sealed events are checked a seq range of ``chunk`` events at a time, by ``workers`` (default:
    one per core when the log is large enough) each with its own connection, and the chunks
    joined in order; inside a transaction (a test's) the chunks are checked through its connection.
    Checkpoints' signatures are checked with ``public`` (default: the keys directory's public key)."""
    broken = _verify_sealed(progress, chunk, workers, public)
    if broken is not None:
        return broken
    return _verify_pending(progress)


def _head() -> tuple[int, str] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_q('seq')}, {_q('hash')} FROM {_q(AuditChainHead._meta.db_table)} WHERE {_q('id')} = 1"  # noqa: S608  # names from the model
        )
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def _verify_sealed(
    progress: Callable[[int], None] | None, chunk: int, workers: int | None, public: Path | None
) -> Break | None:
    # The head is read first: the sealer may seal more while we walk, never less.
    head = _head()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max({_col('seq')}) FROM {_q(AuditEvent._meta.db_table)}")  # noqa: S608  # names from the model
        top = cursor.fetchone()[0] or 0
    cut = cut_point(public)
    if isinstance(cut, Break):
        return cut
    cut_seq, cut_hash = cut
    ranges = _ranges(top, chunk, public, start=cut_seq + 1)
    if workers is None:
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if top - cut_seq >= PARALLEL_FROM else 1
    # After a cut the walk starts at the first event kept, which must follow the cut's hash; the
    # events at or below it that the sweep has not deleted yet are not read.
    state = Walk(prev=cut_hash, expected=cut_seq + 1)
    broken = walk(_chunks(ranges, head or (0, GENESIS), workers), state, progress)
    if broken is not None:
        return broken
    if head is None and state.expected > 1:
        return Break(state.last_pk, state.expected - 1, "the chain head is gone, so a truncated tail would not show")
    if head is not None and state.expected - 1 < head[0]:
        why = f"the chain ends here but was sealed up to seq {head[0]} (events deleted)"
        return Break(state.last_pk, state.expected - 1 or None, why)
    return None


Range = tuple[int, int, str | None]  # lo <= seq < hi, and the digest of the checkpoint covering it


def cut_point(public: Path | None = None) -> tuple[int, str] | Break:
    """Where the log starts: (0, GENESIS), or the newest cut's (cut_seq, cut_hash); a
    :class:`Break` when a cut's signature does not hold with the public key, or it names no
    checkpoint that ends at its seq with its hash (every cut is checked: a few rows).

    A cut is what lets the retention sweep delete events (``appendonly``'s trigger allows a
    DELETE at or below the greatest cut_seq), so a cut the key did not sign is how someone who can
    write the database, but not sign, would hide the events they deleted."""
    cuts = list(
        AuditCut.objects.order_by("cut_seq").values_list(
            "cut_seq", "cut_hash", "checkpoint_first_seq", "checkpoint_digest", "made_at", "signature"
        )
    )
    if not cuts:
        return 0, GENESIS
    verifier = signing.Verifier(public)  # VaultUnavailable: no public key, no verdict
    runs = {
        last: (first, digest, last_hash)
        for first, last, digest, last_hash in AuditCheckpoint.objects.filter(
            last_seq__in=[c[0] for c in cuts]
        ).values_list("first_seq", "last_seq", "digest", "last_hash")
    }
    for cut_seq, cut_hash, first, digest, made_at, signed in cuts:
        if not verifier.holds_cut(signed, signing.CutFields(cut_seq, cut_hash, first, digest, cut_stamp(made_at))):
            why = (
                f"the log is cut at seq {cut_seq} by a cut that the audit signing key did not sign (forged: it "
                "would hide the events deleted before it)"
            )
        elif runs.get(cut_seq) != (first, digest, cut_hash):
            why = (
                f"the log is cut at seq {cut_seq}, but no checkpoint ends there with the cut's hash and digest "
                "(the cut or its checkpoint was altered)"
            )
        else:
            continue
        after = AuditEvent.objects.filter(seq__gt=cut_seq).order_by("seq").values_list("pk", "seq").first()
        return Break(after[0], after[1], why) if after else Break(0, cut_seq, why)
    return int(cuts[-1][0]), str(cuts[-1][1])


def cut_stamp(made_at: datetime.datetime) -> str:
    """A cut's time as its signature covers it: ISO 8601 in UTC, to the second."""
    return made_at.astimezone(datetime.UTC).replace(microsecond=0).isoformat()


def _ranges(top: int, chunk: int, public: Path | None = None, *, start: int = 1) -> list[Range]:
    """The seq ranges to check, from ``start`` (the first event after a cut) up to ``top``: each
    checkpoint's run where one is, and chunks of ``chunk`` events between and after them.
    Checkpoints that overlap, start before ``start`` or pass ``top`` are not used (their runs are
    then checked event by event, as if they were not there)."""
    ranges: list[Range] = []
    lo = start
    taken = AuditCheckpoint.objects.filter(last_seq__lte=top, first_seq__gte=start).values_list(
        "first_seq", "last_seq", "digest", "last_hash", "signature"
    )
    verifier = signing.Verifier(public) if taken else None  # VaultUnavailable: no public key, no verdict
    for first, last, digest, last_hash, signed in taken:
        if first < lo or last < first:
            continue
        ranges.extend((a, min(a + chunk, first), None) for a in range(lo, first, chunk))
        # A checkpoint that its signature does not cover matches nothing: its run is walked, and
        # named at its first event if every event follows (CHECKPOINT_BROKEN).  The last hash is
        # checked with the run: it is in the run's text.
        holds = verifier is not None and verifier.holds(signed, first, last, digest, last_hash)
        ranges.append((first, last + 1, digest if holds else "unsigned"))
        lo = last + 1
    ranges.extend((a, min(a + chunk, top + 1), None) for a in range(lo, top + 1, chunk))
    return ranges


def _chunks(ranges: list[Range], head: tuple[int, str], workers: int) -> Iterator[Chunk]:
    """Each range's :class:`Chunk`, in order: computed here, or ahead by ``workers`` with their
    own connections (which see only what is committed: not inside a transaction)."""
    parallel = workers > 1 and len(ranges) > 1 and not connection.in_atomic_block
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        # Workers are forked (they run only ``scan``): not beside other threads, which a fork
        # could catch holding a lock.
        if parallel and threading.active_count() == 1 and name != ":memory:" and "mode=memory" not in name:
            yield from _in_processes(name, ranges, head, workers)
            return
        connection.ensure_connection()
        for lo, hi, digest in ranges:
            yield check_chunk(connection.connection, _sqlite_queries(), lo, hi, head, digest=digest)
        return
    if parallel:
        yield from _in_threads(ranges, head, workers)
        return
    with connection.cursor() as cursor:
        for lo, hi, digest in ranges:
            yield _pg_chunk(cursor, lo, hi, head, digest)


def _in_processes(name: str, ranges: list[Range], head: tuple[int, str], workers: int) -> Iterator[Chunk]:
    """SQLite: the chunks checked by worker processes (hashing is CPU work, and SQLite's too)."""
    context = multiprocessing.get_context("fork")
    queries = _sqlite_queries()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        try:
            yield from pool.map(sqlite_chunk, [(name, queries, lo, hi, head, digest) for lo, hi, digest in ranges])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _in_threads(ranges: list[Range], head: tuple[int, str], workers: int) -> Iterator[Chunk]:
    """PostgreSQL: the chunks checked by the database over ``workers`` connections (threads only wait)."""
    results: list[Chunk | BaseException | None] = [None] * len(ranges)
    ready = [threading.Event() for _ in ranges]
    stop = threading.Event()

    def work(first: int) -> None:
        try:
            with connection.cursor() as cursor:  # this thread's own connection
                for i in range(first, len(ranges), workers):
                    if stop.is_set():
                        return
                    try:
                        lo, hi, digest = ranges[i]
                        results[i] = _pg_chunk(cursor, lo, hi, head, digest)
                    except BaseException as exc:  # noqa: BLE001  # handed to the walk, which raises it
                        results[i] = exc
                        return
                    finally:
                        ready[i].set()
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for i in range(len(ranges)):
            while not ready[i].wait(1.0):
                if not threads[i % workers].is_alive() and not ready[i].is_set():
                    raise RuntimeError("an audit verification thread ended early")
            result = results[i]
            if isinstance(result, BaseException):
                raise result
            if result is None:
                raise RuntimeError("an audit verification thread left a chunk unchecked")
            yield result
    finally:
        stop.set()
        for thread in threads:
            thread.join()


@cache
def _sqlite_queries() -> SqliteQueries:
    table = _q(AuditEvent._meta.db_table)
    seq, pk, prev_hash, stored = _col("seq"), _col("id"), _col("prev_hash"), _col("hash")
    where = f"FROM {table} WHERE {seq} >= ? AND {seq} < ?"  # names from the model (no S608 below: no SELECT here)
    render = _render("sqlite", with_link=True)
    # The same bytes as ``render`` (format() writes NULL as '', which ``never_null`` counts).
    columns = ["prev_hash", "seq", "id", "digest", *CONTENT_FIELDS]
    template = SEP.join(["%s"] * len(columns))
    hashed = f"format('{template}', {', '.join(_col(c) for c in columns)})"
    # A prev_hash of another length could hold a separator and still start with the right hash.
    never_null = " OR ".join(f"{_col(c)} IS NULL" for c in columns if c not in ("actor", "person"))
    never_null += f" OR length({prev_hash}) <> 64"
    return SqliteQueries(
        first=f"SELECT {seq}, {pk}, {prev_hash}, ({render}) IS NULL {where} ORDER BY {seq} LIMIT 1",
        last=f"SELECT {seq}, {pk}, {stored} {where} ORDER BY {seq} DESC LIMIT 1",
        summary=(
            f"SELECT count(*), min({seq}), max({seq}), sum({never_null}), group_concat({stored} || char(31), ''), "
            f"CAST(group_concat({hashed}, char(30)) AS BLOB) {where}"
        ),
        exact=f"SELECT {seq}, {pk}, {prev_hash}, {stored}, CAST({render} AS BLOB) {where} ORDER BY {seq}",
        # The run's text in seq order (a co-routine over the seq index: no sort, no copy).
        run=(
            f"SELECT count(*), min({seq}), max({seq}), sum(n), CAST(group_concat(t, char(30)) AS BLOB) FROM ("  # noqa: S608
            f"SELECT {seq}, {never_null} OR {stored} IS NULL AS n, "
            f"format('{template}{SEP}%s', {', '.join(_col(c) for c in columns)}, {stored}) AS t "
            f"{where} ORDER BY {seq})"  # names from the model
        ),
        at=f"SELECT {stored} FROM {table} WHERE {seq} = ?",  # noqa: S608
    )


@cache
def _pg_chunk_sql() -> str:
    """PostgreSQL: the first event of a seq range and its first break, hashed by the database."""
    seq, pk, prev_hash, stored = _col("seq"), _col("id"), _col("prev_hash"), _col("hash")
    computed = f"encode(sha256(convert_to({_render('postgresql', with_link=True)}, 'UTF8')), 'hex')"
    return f"""
        WITH chunk AS (
            SELECT {seq}, {pk}, {prev_hash}, {stored}, {computed} AS computed,
                lag({stored}) OVER w AS before, lag({seq}) OVER w AS seq_before
            FROM {_q(AuditEvent._meta.db_table)} WHERE {seq} >= %s AND {seq} < %s
            WINDOW w AS (ORDER BY {seq})
        )
        SELECT {seq}, {pk}, {prev_hash}, {stored}, computed, before, seq_before FROM chunk
        WHERE seq_before IS NULL OR computed IS NULL OR computed IS DISTINCT FROM {stored}
            OR {prev_hash} IS DISTINCT FROM before OR {seq} <> seq_before + 1
            OR ({seq} = %s AND {stored} IS DISTINCT FROM %s)
        ORDER BY {seq} LIMIT 2
    """  # noqa: S608  # names from the model


@cache
def _pg_run_sql() -> str:
    """PostgreSQL: a seq range's count, bounds, NULLs and the digest of its run (``scan.run_digest``)."""
    seq, stored = _col("seq"), _col("hash")
    text = f"{_render('postgresql', with_link=True)} || '{SEP}' || {stored}"
    return (
        f"SELECT count(*), min({seq}), max({seq}), count(*) FILTER (WHERE ({text}) IS NULL), "  # noqa: S608  # names from the model
        f"encode(sha256(convert_to(string_agg({text}, chr(30) ORDER BY {seq}), 'UTF8')), 'hex') "
        f"FROM {_q(AuditEvent._meta.db_table)} WHERE {seq} >= %s AND {seq} < %s"
    )


def _pg_chunk(cursor: Any, lo: int, hi: int, head: tuple[int, str], digest: str | None = None) -> Chunk:
    if digest is not None:
        fast = _pg_run(cursor, lo, hi, head, digest)
        if fast is not None:
            return fast
    chunk = _pg_walk(cursor, lo, hi, head)
    if digest is not None and chunk.broken is None and chunk.first is not None and not chunk.first[3]:
        return chunk._replace(broken=Break(chunk.first[1], chunk.first[0], CHECKPOINT_BROKEN))
    return chunk


def _pg_ends(cursor: Any, lo: int, hi: int) -> tuple[tuple[int, int, str | None], tuple[int, int, str | None]] | None:
    """The first (seq, id, prev_hash) and last (seq, id, hash) events of a seq range."""
    table, seq, pk = _q(AuditEvent._meta.db_table), _col("seq"), _col("id")
    ends = []
    for column, order in ((_col("prev_hash"), ""), (_col("hash"), " DESC")):
        cursor.execute(
            f"SELECT {seq}, {pk}, {column} FROM {table} WHERE {seq} >= %s AND {seq} < %s ORDER BY {seq}{order} LIMIT 1",  # noqa: S608  # names from the model
            [lo, hi],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        ends.append(tuple(row))
    return ends[0], ends[1]


def _pg_run(cursor: Any, lo: int, hi: int, head: tuple[int, str], digest: str) -> Chunk | None:
    """The range as one hash against its checkpoint's digest: its Chunk, or None if it does not hold."""
    cursor.execute(_pg_run_sql(), [lo, hi])
    count, low, high, nulls, computed = cursor.fetchone()
    if not count or nulls or high - low + 1 != count or computed != digest:
        return None
    head_seq, head_hash = head
    if low <= head_seq <= high:
        table, seq, stored = _q(AuditEvent._meta.db_table), _col("seq"), _col("hash")
        cursor.execute(f"SELECT {stored} FROM {table} WHERE {seq} = %s", [head_seq])  # noqa: S608  # names from the model
        if cursor.fetchone()[0] != head_hash:
            return None
    ends = _pg_ends(cursor, lo, hi)
    if ends is None:
        return None
    (first_seq, first_pk, first_prev), last = ends
    return Chunk(count, (first_seq, first_pk, first_prev, False), last, None)


def _pg_walk(cursor: Any, lo: int, hi: int, head: tuple[int, str]) -> Chunk:
    cursor.execute(_pg_chunk_sql(), [lo, hi, *head])
    rows = cursor.fetchall()
    if not rows:
        return Chunk(0, None, None, None)
    table, seq, pk, stored = _q(AuditEvent._meta.db_table), _col("seq"), _col("id"), _col("hash")
    cursor.execute(
        f"SELECT {seq}, {pk}, {stored} FROM {table} WHERE {seq} >= %s AND {seq} < %s ORDER BY {seq} DESC LIMIT 1",  # noqa: S608  # names from the model
        [lo, hi],
    )
    last = tuple(cursor.fetchone())
    first_seq, first_pk, first_prev, _, first_computed = rows[0][:5]
    broken = scan([rows[0][:5]], head, None, None)
    if broken is None and len(rows) > 1:
        row, before, seq_before = rows[1][:5], rows[1][5], rows[1][6]
        broken = scan([row], head, before, seq_before + 1)
    count = last[0] - first_seq + 1
    return Chunk(count, (first_seq, first_pk, first_prev, first_computed is None), last, broken)


def _verify_pending(progress: Callable[[int], None] | None) -> Break | None:
    """Events not sealed yet, by id: no hash, and a digest that matches their content.  The
    columns are read raw (on SQLite the stored text, hashed as ``record_event`` wrote it; on
    PostgreSQL the driver's values, as the ORM would load them), and only an event whose digest
    does not match that way is loaded through the ORM to decide (``digest_of``)."""
    table = _q(AuditEvent._meta.db_table)
    sqlite = connection.vendor == "sqlite"
    # On SQLite the timestamp as its stored text (a bare column would be parsed by the driver).
    when = f"CAST({_col('occurred_at')} AS TEXT)" if sqlite else _col("occurred_at")
    columns = ", ".join([*(_col(c) for c in ("id", "prev_hash", "hash", "digest")), when])
    columns += ", " + ", ".join(_col(c) for c in CONTENT_FIELDS[1:])
    sql = (
        f"SELECT {columns} FROM {table} WHERE {_col('seq')} IS NULL AND {_col('id')} > %s "  # noqa: S608  # names from the model
        f"ORDER BY {_col('id')} LIMIT %s"
    )
    as_read = _as_stored_sqlite if sqlite and connection.timezone_name == "UTC" else _as_loaded
    last = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [last, VERIFY_BATCH])
            batch = cursor.fetchall()
            if not batch:
                return None
            for pk, prev_hash, stored_hash, digest, *content in batch:
                if prev_hash is not None or stored_hash is not None:
                    return Break(pk, None, "it carries a hash but no seq (half sealed, or its seq was erased)")
                if digest != as_read(content) and digest != _orm_digest(pk):
                    return Break(pk, None, "its digest does not match its content (the event was rewritten)")
            last = batch[-1][0]
            if progress is not None:
                progress(len(batch))


_UUID_HEX = 32  # a UUID as Django stores it on SQLite


def _as_stored_sqlite(content: list[Any]) -> str | None:
    """The digest of content as SQLite stores it (Django's naive UTC text, UUIDs as 32 hex digits,
    JSON as ``record_event`` wrote it), or None when it is not in that form."""
    occurred_at, event_type, actor_kind, actor, person, purpose, fields, reason, extra = content
    if not isinstance(occurred_at, str) or occurred_at[10:11] != " ":
        return None
    if person is not None:
        if not isinstance(person, str) or len(person) != _UUID_HEX:
            return None
        person = f"{person[:8]}-{person[8:12]}-{person[12:16]}-{person[16:20]}-{person[20:]}"
    when = f"{occurred_at[:10]}T{occurred_at[11:]}+00:00"
    return content_digest((when, event_type, actor_kind, actor, person, purpose, fields, reason, extra))


def _as_loaded(content: list[Any]) -> str | None:
    """The digest of content as the driver returns it (PostgreSQL: datetimes and UUIDs loaded,
    jsonb as text, which JSONField would parse), or None when it is not in that form."""
    occurred_at, event_type, actor_kind, actor, person, purpose, fields, reason, extra = content
    if not isinstance(occurred_at, datetime.datetime):
        return None
    fields, extra = (json.loads(v) if isinstance(v, str) else v for v in (fields, extra))
    return digest_of((occurred_at, event_type, actor_kind, actor, person, purpose, fields, reason, extra))


def _orm_digest(pk: int) -> str | None:
    """The digest of the event's content as the ORM loads it (None: it is gone)."""
    content = AuditEvent.objects.filter(pk=pk).values_list(*CONTENT_ATTRS).first()
    return None if content is None else digest_of(tuple(content))


def verify_exported(path: Path, public: Path | None = None) -> Break | None:
    """Check the database's log against an export file of signed checkpoints (one JSON line each):
    every line's signature, and that the log still holds each run it names, unchanged, with the
    same last hash.  What it catches that ``verify`` cannot: a log cut short (the head moved back
    with it), and a log rewritten with every hash and its checkpoints recomputed, by someone who
    can write the database but holds neither the signing key nor this file.

    Run after ``verify`` (which checks the runs whose checkpoint the database still holds, with
    the same digest, so those are not hashed twice).  Raises ExportUnreadable for a file that is
    not an export (a line that is not one, or whose signature does not verify)."""
    verifier = signing.Verifier(public)
    held = {
        (f, la, d, h)
        for f, la, d, h in AuditCheckpoint.objects.values_list("first_seq", "last_seq", "digest", "last_hash")
    }
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max({_col('seq')}) FROM {_q(AuditEvent._meta.db_table)}")  # noqa: S608  # names from the model
        top = cursor.fetchone()[0] or 0
    # Runs at or below a signed cut (the file's, or the database's, which ``verify`` checked) are
    # not looked for in the log: the retention sweep deleted them.
    runs, cut_seq = _exported(path, verifier)
    in_database = cut_point(public)
    if not isinstance(in_database, Break):
        cut_seq = max(cut_seq, in_database[0])
    for first, last, digest, last_hash in runs:
        if (first, last, digest, last_hash) in held or last <= cut_seq:
            continue
        if last > top:
            pk = AuditEvent.objects.filter(seq=top).values_list("pk", flat=True).first() or 0
            why = f"the log ends at seq {top}, but events up to seq {last} were checkpointed in {path.name} (truncated)"
            return Break(pk, top or None, why)
        count, low, high, computed = _run_of(first, last + 1)
        if count != last - first + 1 or (low, high) != (first, last) or computed != digest:
            pk = AuditEvent.objects.filter(seq__gte=first).order_by("seq").values_list("pk", flat=True).first() or 0
            why = f"seq {first} to {last} no longer match the checkpoint exported to {path.name} (rewritten or cut)"
            return Break(pk, first, why)
    return None


def _exported(path: Path, verifier: signing.Verifier) -> tuple[list[tuple[int, int, str, str]], int]:
    """The export file's checkpoints (first, last, digest, last hash) and its greatest cut_seq (0:
    none), each line's signature checked (ExportUnreadable)."""
    runs, cut_seq = [], 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if "cut_seq" in entry:
                cut = signing.CutFields(
                    int(entry["cut_seq"]),
                    str(entry["cut_hash"]),
                    int(entry["checkpoint_first_seq"]),
                    str(entry["checkpoint_digest"]),
                    str(entry["made_at"]),
                )
                holds = verifier.holds_cut(str(entry["signature"]), cut)
                cut_seq = max(cut_seq, cut.cut_seq) if holds else cut_seq
            else:
                first, last = int(entry["first_seq"]), int(entry["last_seq"])
                digest, last_hash = str(entry["digest"]), str(entry["last_hash"])
                holds = verifier.holds(str(entry["signature"]), first, last, digest, last_hash)
                runs.append((first, last, digest, last_hash))
        except (ValueError, KeyError, TypeError):
            raise ExportUnreadable(f"{path}, line {number}: neither a checkpoint nor a cut") from None
        if not holds:
            raise ExportUnreadable(f"{path}, line {number}: its signature does not verify with the public key")
    return runs, cut_seq


def verify_upto(upto: int, public: Path | None = None, *, chunk: int = VERIFY_CHUNK) -> Break | None:
    """The first break among the sealed events from the last cut up to ``upto`` (a cut to come
    checks what it will delete first: a log that does not verify is evidence, and is not cut)."""
    head = _head()
    cut = cut_point(public)
    if isinstance(cut, Break):
        return cut
    cut_seq, cut_hash = cut
    state = Walk(prev=cut_hash, expected=cut_seq + 1)
    ranges = _ranges(upto, chunk, public, start=cut_seq + 1)
    broken = walk(_chunks(ranges, head or (0, GENESIS), 1), state, None)
    if broken is None and state.expected - 1 != upto:
        why = f"the chain ends here, before seq {upto} (events deleted)"
        broken = Break(state.last_pk, state.expected - 1 or None, why)
    return broken


class ExportUnreadable(Exception):
    """The export file cannot be read as signed checkpoints."""


def _run_of(lo: int, hi: int) -> tuple[int, int | None, int | None, str | None]:
    """A seq range's count, bounds and run digest (None when a never-empty column is NULL)."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        count, low, high, nulls, text = connection.connection.execute(_sqlite_queries().run, (lo, hi)).fetchone()
        return count, low, high, None if nulls else hashlib.sha256(text or b"").hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(_pg_run_sql(), [lo, hi])
        count, low, high, nulls, computed = cursor.fetchone()
    return count, low, high, None if nulls else computed


def verify_chain() -> AuditEvent | None:
    """The first event that does not verify (sealed or not), or None (``verify()`` says why)."""
    broken = verify()
    if broken is None:
        return None
    event = AuditEvent.objects.filter(pk=broken.event_id).first()
    if event is None:  # the head outlives every sealed event: name the last event there is, if any
        event = AuditEvent.objects.order_by("-pk").first()
    return event if event is not None else AuditEvent(pk=0, seq=broken.seq, event_type="")
