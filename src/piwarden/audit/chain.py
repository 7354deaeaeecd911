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
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import DatabaseError, connection, transaction

from piwarden.audit.models import CONTENT_ATTRS, AuditChainHead, AuditEvent, column_of, digest_of
from piwarden.errors import describe

logger = logging.getLogger("piwarden.audit")

GENESIS = "0" * 64
SEP = "\x1f"
# Events per sealing transaction: on SQLite each one holds the write lock (about 0.1 s for 1000
# here), so a backlog (say, after an upgrade) is sealed in short turns between requests.
SEAL_BATCH = 1000
VERIFY_BATCH = 20000

_reported: set[int] = set()  # pending events already logged as not sealable (log once per process)


@dataclass(frozen=True)
class Break:
    """The first event that does not verify, and why."""

    event_id: int
    seq: int | None
    why: str

    def __str__(self) -> str:
        where = f"seq {self.seq} (id {self.event_id})" if self.seq is not None else f"unsealed id {self.event_id}"
        return f"audit event {where}: {self.why}"


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
    return sealed


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
    return AuditEvent.objects.count()


def verify(progress: Callable[[int], None] | None = None) -> Break | None:
    """The first event that breaks the chain or its digest, or None.  ``progress(n)`` hears of each batch."""
    broken = _verify_sealed(progress)
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


@dataclass
class _Walk:
    """Where the walk over sealed events is: the hash and seq the next event must follow."""

    head: tuple[int, str]
    prev: str = GENESIS
    expected: int = 1
    last_pk: int = 0


def _verify_sealed(progress: Callable[[int], None] | None) -> Break | None:
    # The head is read first: the sealer may seal more while we walk, never less.
    head = _head()
    walk = _Walk(head=head or (0, GENESIS))
    in_database = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        while True:
            if in_database and _summary_holds(cursor, walk, progress):
                continue
            cursor.execute(_rows_sql(connection.vendor), [walk.expected - 1, VERIFY_BATCH])
            rows = cursor.fetchall()
            if not rows:
                break
            broken = _check_rows(rows, walk, hashed=in_database)
            if broken is not None:
                return broken
            if progress is not None:
                progress(len(rows))
    if head is None and walk.expected > 1:
        return Break(walk.last_pk, walk.expected - 1, "the chain head is gone, so a truncated tail would not show")
    if walk.expected - 1 < walk.head[0]:
        why = f"the chain ends here but was sealed up to seq {walk.head[0]} (events deleted)"
        return Break(walk.last_pk, walk.expected - 1 or None, why)
    return None


@cache
def _rows_sql(vendor: str) -> str:
    """One batch of sealed events: seq, id, prev_hash, hash and the hashed text (PostgreSQL: its hash)."""
    render = _render(vendor, with_link=True)
    computed = f"encode(sha256(convert_to({render}, 'UTF8')), 'hex')" if vendor == "postgresql" else render
    return (
        f"SELECT {_col('seq')}, {_col('id')}, {_col('prev_hash')}, {_col('hash')}, {computed} AS computed "  # noqa: S608  # names from the model
        f"FROM {_q(AuditEvent._meta.db_table)} WHERE {_col('seq')} > %s ORDER BY {_col('seq')} LIMIT %s"
    )


def _check_rows(
    rows: list[tuple[int, int, str | None, str | None, str | None]], walk: _Walk, *, hashed: bool
) -> Break | None:
    sha256 = hashlib.sha256
    head_seq, head_hash = walk.head
    prev, expected = walk.prev, walk.expected
    for seq, pk, prev_hash, stored, text in rows:
        if text is None or seq != expected or prev_hash != prev:
            return _link_break(seq, pk, prev, expected, text)
        if (text if hashed else sha256(text.encode()).hexdigest()) != stored:
            return Break(pk, seq, "its hash does not match its stored columns (the event was rewritten)")
        if seq == head_seq and stored != head_hash:
            return Break(pk, seq, "its hash is not the one the chain head recorded (the chain was rewritten)")
        prev = stored
        expected += 1
    walk.prev, walk.expected, walk.last_pk = prev, expected, rows[-1][1]
    return None


@cache
def _summary_sql() -> str:
    """PostgreSQL: check a whole batch in the database and return one row about it."""
    seq, pk, prev_hash, stored = _col("seq"), _col("id"), _col("prev_hash"), _col("hash")
    return f"""
        WITH batch AS ({_rows_sql("postgresql")}),
        linked AS (
            SELECT batch.*, lag({stored}) OVER w AS before, lag({seq}) OVER w AS seq_before
            FROM batch WINDOW w AS (ORDER BY {seq})
        )
        SELECT count(*), min({seq}),
            bool_or(
                computed IS DISTINCT FROM {stored}
                OR (seq_before IS NOT NULL AND ({prev_hash} IS DISTINCT FROM before OR {seq} <> seq_before + 1))
                OR ({seq} = %s AND {stored} IS DISTINCT FROM %s)
            ),
            (array_agg({prev_hash} ORDER BY {seq}))[1],
            (array_agg({stored} ORDER BY {seq} DESC))[1],
            (array_agg({pk} ORDER BY {seq} DESC))[1]
        FROM linked
    """  # noqa: S608  # names from the model


def _summary_holds(cursor: Any, walk: _Walk, progress: Callable[[int], None] | None) -> bool:
    """Whether the next batch checks out as a whole (then the walk moves past it); when it does
    not, the caller walks the batch row by row to name the event."""
    cursor.execute(_summary_sql(), [walk.expected - 1, VERIFY_BATCH, *walk.head])
    count, first_seq, bad, first_prev, last_hash, last_pk = cursor.fetchone()
    if not count or bad or first_seq != walk.expected or first_prev != walk.prev:
        return False
    walk.prev, walk.expected, walk.last_pk = last_hash, walk.expected + count, last_pk
    if progress is not None:
        progress(count)
    return True


def _link_break(seq: int, pk: int, prev: str, expected: int, text: str | None) -> Break:
    if text is None:
        return Break(pk, seq, "a column that is never empty is NULL (the event was rewritten)")
    if seq != expected:
        return Break(pk, seq, f"seq {expected} is missing before it (an event was deleted or renumbered)")
    return Break(pk, seq, "its prev_hash is not the hash of the event before it (an event was deleted or moved)")


def _verify_pending(progress: Callable[[int], None] | None) -> Break | None:
    last = 0
    pending = AuditEvent.objects.filter(seq__isnull=True).order_by("pk")
    while True:
        batch = list(
            pending.filter(pk__gt=last).values_list("pk", "prev_hash", "hash", "digest", *CONTENT_ATTRS)[:VERIFY_BATCH]
        )
        if not batch:
            return None
        for pk, prev_hash, stored_hash, digest, *content in batch:
            if prev_hash is not None or stored_hash is not None:
                return Break(pk, None, "it carries a hash but no seq (half sealed, or its seq was erased)")
            if digest != digest_of(tuple(content)):
                return Break(pk, None, "its digest does not match its content (the event was rewritten)")
        last = batch[-1][0]
        if progress is not None:
            progress(len(batch))


def verify_chain() -> AuditEvent | None:
    """The first event that does not verify (sealed or not), or None (``verify()`` says why)."""
    broken = verify()
    if broken is None:
        return None
    event = AuditEvent.objects.filter(pk=broken.event_id).first()
    if event is None:  # the head outlives every sealed event: name the last event there is, if any
        event = AuditEvent.objects.order_by("-pk").first()
    return event if event is not None else AuditEvent(pk=0, seq=broken.seq, event_type="")
