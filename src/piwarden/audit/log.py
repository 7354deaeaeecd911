"""Append to the audit log: ``record_event`` is the only way in.

An append takes no lock but the row it writes: the event goes in with its content ``digest``
and without ``seq``/``prev_hash``/``hash``, which the sealer (``piwarden.audit.chain``) fills
in after commit.  Inside ``batched()`` the events of a block are buffered and written, at the
block's exit, in one statement (``_write``); outside it each event is one INSERT.  The statement
is built once from the model's metadata (the ORM's per-object work costs more than the write).
"""

from __future__ import annotations

import datetime
import re
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections

from piwarden.audit.chain import verify_chain
from piwarden.audit.models import (
    CONTENT_FIELDS,
    ActorKind,
    AuditEvent,
    EventType,
    canonical_json,
    column_of,
    content_digest,
)
from piwarden.audit.scan import SEP

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.backends.base.base import BaseDatabaseWrapper

    from piwarden.people.models import Person

__all__ = ["ActorKind", "EventType", "batched", "record_event", "verify_chain"]

# Values under these keys must never reach the log, whatever a caller passes.  A key is read
# as words ("otp_token", "newPassword", "password1"), because callers log form fields and
# request bodies under their own names (the staff sign-in form's code field is "otp_token").
# A key *named* "…key" is key material; "primary_key_id" names a key and stays readable.
_SECRET_WORDS = {"password", "passwd", "secret", "token", "otp"}
_KEY_WORDS = {"key", "apikey"}
_MASK = "***"

# The columns an append writes, in the order of each row's parameters.
_COLUMNS = (*CONTENT_FIELDS, "digest")
_JSON_COLUMNS = {"fields", "extra"}
# SQLite allows 32766 parameters in one statement; a larger batch is written in chunks.
_ROWS_PER_STATEMENT = 2000

_Row = tuple[Any, ...]
_buffer: ContextVar[list[_Row] | None] = ContextVar("audit_buffer", default=None)


@lru_cache(maxsize=4096)  # callers use a few dozen key names; bounded all the same
def _is_secret(key: str) -> bool:
    words = [w for w in re.split(r"[^a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()) if w]
    return bool(words) and (words[-1] in _KEY_WORDS or any(w in _SECRET_WORDS for w in words))


def _masked(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking key's value masked, at any depth."""
    if isinstance(value, dict):
        return {k: (_MASK if _is_secret(str(k)) else _masked(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


@lru_cache(maxsize=32)  # requests write 1 to a few events; bulk writers reuse their chunk size
def _insert_sql(db: BaseDatabaseWrapper, rows: int, *, driver: bool = False) -> str:
    """``INSERT INTO <table> (<columns>) VALUES (…), (…)`` for ``rows`` rows, from the model
    (``driver``: in the driver's own parameter style, for sending it past Django's cursor)."""
    meta = AuditEvent._meta
    names = ", ".join(db.ops.quote_name(column_of(c)) for c in _COLUMNS)
    cast = "::jsonb" if db.vendor == "postgresql" else ""
    if driver and db.vendor == "postgresql":  # numbered: PostgreSQL's own style, sent as it is (RawCursor)
        numbers = iter(range(1, rows * len(_COLUMNS) + 1))
        marks = [[f"${next(numbers)}" for _ in _COLUMNS] for _ in range(rows)]
    else:
        mark = "?" if driver and db.vendor == "sqlite" else "%s"
        marks = [[mark] * len(_COLUMNS)] * rows
    values = ", ".join(
        "(" + ", ".join(f"{m}{cast}" if c in _JSON_COLUMNS else m for c, m in zip(_COLUMNS, row, strict=True)) + ")"
        for row in marks
    )
    return f"INSERT INTO {db.ops.quote_name(meta.db_table)} ({names}) VALUES {values}"  # noqa: S608  # names from the model


def _write(db: BaseDatabaseWrapper, rows: list[_Row]) -> None:
    """Insert ``rows`` in one statement: on PostgreSQL one multi-row INSERT (one round trip per
    ``_ROWS_PER_STATEMENT``), on SQLite one prepared single-row INSERT run for every row
    (``executemany``: no round trips to save, and SQLite's multi-row VALUES costs more per row)."""
    watched = bool(db.queries_logged or db.execute_wrappers)
    if db.vendor == "sqlite":
        many = len(rows) > 1
        _send(db, _insert_sql(db, 1, driver=not watched), rows if many else rows[0], many=many, watched=watched)
        return
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        params = [v for row in chunk for v in row]
        _send(db, _insert_sql(db, len(chunk), driver=not watched), params, many=False, watched=watched)


def _send(db: BaseDatabaseWrapper, sql: str, params: Any, *, many: bool, watched: bool) -> None:
    if watched:
        # Someone counts or wraps statements (DEBUG, CaptureQueriesContext, a wrapper): go
        # through Django's cursor so that they see this one.
        with db.cursor() as cursor:
            (cursor.executemany if many else cursor.execute)(sql, params)
        return
    # The same statement straight to the driver: Django's cursor costs more than the insert.
    db.validate_no_broken_transaction()
    db.ensure_connection()
    with db.wrap_database_errors:
        if db.vendor == "postgresql":
            _send_bound(db.connection, sql, params, many=many)
        else:
            (db.connection.executemany if many else db.connection.execute)(sql, params)


def _send_bound(raw: Any, sql: str, params: Any, *, many: bool) -> None:
    """PostgreSQL: the values sent beside the statement (server-side binding), not quoted into
    it: Django's connections quote on the client (``ClientCursor``), which for a batch of three
    events (30 values) cost about three times the rest of the statement's client CPU here.
    Not prepared: that saved nothing measurable and breaks behind a transaction-mode pooler.

    One ``RawCursor`` per connection, kept for its life: the statement is in PostgreSQL's own
    ``$n`` style, so psycopg sends it as it is, and making a cursor per statement cost about as
    much as converting ``%s`` (together ~20 µs of the ~50 µs a batch of three cost the client)."""
    cursor = _cursors.get(raw)
    if cursor is None or cursor.closed:
        from psycopg import RawCursor  # noqa: PLC0415  # PostgreSQL only; once per connection

        cursor = _cursors[raw] = RawCursor(raw)
    (cursor.executemany if many else cursor.execute)(sql, params)


_cursors: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _db_values(db: BaseDatabaseWrapper, now: datetime.datetime, person: Person | None) -> tuple[Any, Any]:
    """``now`` and the person's key as the database takes them (what the ORM would send)."""
    if db.vendor == "sqlite" and db.timezone_name == "UTC":
        # Django's SQLite format (naive UTC text, UUIDs as 32 hex digits), without its per-call lookups.
        return str(now.replace(tzinfo=None)), person.pk.hex if person is not None else None
    if db.vendor == "postgresql":
        # What Django's PostgreSQL backend sends: the aware datetime and the UUID as they are.
        return now, person.pk if person is not None else None
    person_field = AuditEvent._meta.get_field("person").target_field
    return (
        db.ops.adapt_datetimefield_value(now),
        person_field.get_db_prep_value(person.pk, db) if person is not None else None,
    )


def record_event(
    event_type: EventType,
    *,
    actor: AbstractBaseUser | None = None,
    actor_kind: ActorKind | None = None,
    person: Person | None = None,
    purpose: str = "",
    fields: Iterable[str] = (),
    reason: str = "",
    extra: dict[str, Any] | None = None,
) -> None:
    """Append one event.  Must run inside the transaction of the change it records.

    Inside ``batched()`` the event is written when the block exits; otherwise at once."""
    db = connections[DEFAULT_DB_ALIAS]
    if not db.in_atomic_block:
        raise RuntimeError("record_event() must run inside the transaction of the change it records")
    if actor_kind is None:
        actor_kind = ActorKind.STAFF if actor is not None else ActorKind.SYSTEM
    now = datetime.datetime.now(datetime.UTC)
    actor_id = actor.pk if actor is not None else None
    person_id = str(person.pk) if person is not None else None
    fields_json = canonical_json(sorted(fields))
    extra_json = canonical_json(_masked(extra or {}))
    kind, actor_as = str(event_type), str(actor_kind)
    # The sealer joins columns with U+001F (see chain.py): free text must not contain it.
    purpose, reason = purpose.replace(SEP, " "), reason.replace(SEP, " ")
    digest = content_digest(
        (now.isoformat(), kind, actor_as, actor_id, person_id, purpose, fields_json, reason, extra_json)
    )
    occurred_at, person_key = _db_values(db, now, person)
    row = (
        occurred_at,
        kind,
        actor_as,
        actor_id,
        person_key,
        purpose,
        fields_json,
        reason,
        extra_json,
        digest,
    )
    pending = _buffer.get()
    if pending is None:
        _write(db, [row])
    else:
        pending.append(row)


@contextmanager
def batched() -> Iterator[None]:
    """Buffer the ``record_event`` calls of the block and write them in one statement at its exit.

    The exit must still be inside the transaction of the change (as ``record_event`` is); a
    block left by an exception writes nothing.  The buffer ignores savepoints: an event recorded
    in an inner ``atomic()`` that rolls back is still written, so keep a block to one outcome.
    Nested blocks write with the outermost."""
    if _buffer.get() is not None:
        yield
        return
    pending: list[_Row] = []
    token = _buffer.set(pending)
    try:
        yield
    finally:
        _buffer.reset(token)
    if pending:
        db = connections[DEFAULT_DB_ALIAS]
        if not db.in_atomic_block:
            raise RuntimeError("audit.log.batched() must exit inside the transaction of the change it records")
        _write(db, pending)
