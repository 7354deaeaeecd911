"""Statements prepared once so that a hot path sends them without the ORM's work each time.

**INSERTs prepared before the transaction that runs them**: ``Model.save()`` of a new row in two halves.

SQLite has one write lock, taken at ``BEGIN IMMEDIATE`` and held to ``COMMIT``: whatever a write
path does inside its transaction, every other writer waits for.  A model's ``save()`` does most of
its work in Python (defaults, every field's ``pre_save`` — the encryption of an
``EncryptedTextField`` with its associated data, ``auto_now_add`` — the conversion of each value to
the database's form, the statement's text), and a task's ``enqueue`` builds its payload the same
way.  :func:`prepare_insert` does all of that before the transaction opens; inside it,
:meth:`PreparedInsert.run` sends one statement.

The row's primary key must be known before the INSERT (a client-side default such as ``uuid7``),
as an encrypted field demands anyway.  The model's ``pre_save`` signal is sent when the row is
prepared and ``post_save`` when it is written, so receivers (``django_tasks_db`` sets a task's
``run_after`` in one) see what ``save()`` would show them.  The statement's text is built once per
model and connection from the model's metadata; values go through the fields' own
``get_db_prep_save``, as the ORM's INSERT sends them.

**SELECTs compiled once per process** (:class:`PreparedSelect`): a queryset built and compiled
by the ORM, with :class:`Param` where a value is given at each run, becomes the statement's text
and its columns' converters once per connection; each run binds the values and reads the rows
through the cursor, converted as the ORM converts them (dates, UUIDs, JSON), as tuples.  Building
and compiling a small queryset costs ~0.3 ms here, several times the SQLite read itself, and an
export runs a dozen of them for every person.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import Expression, Field, Model, QuerySet, signals

from piwarden.sqlite.base import writer_turn

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler
    from django.tasks import Task


@dataclass(frozen=True)
class PreparedInsert:
    """One new row, ready to be written: run it inside the transaction."""

    instance: Model
    sql: str
    params: tuple[Any, ...]
    using: str
    then: Callable[[], object] | None = field(default=None, compare=False)

    def run(self) -> Model:
        # Straight to the driver on SQLite (see execute): Django's cursor costs more than SQLite's
        # INSERT, and on SQLite that time is spent holding the write lock.
        execute(self.sql, self.params, using=self.using, rows=False)
        instance = self.instance
        instance._state.adding = False
        instance._state.db = self.using
        signals.post_save.send(
            sender=type(instance), instance=instance, created=True, update_fields=None, raw=False, using=self.using
        )
        if self.then is not None:
            self.then()
        return instance


def execute(
    sql: str, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS, rows: bool = True
) -> list[tuple[Any, ...]]:
    """Run one statement (``%s`` marks) and return its rows (``rows=False``: none are read).

    On SQLite, when nobody counts or wraps statements, it goes straight to the driver, as the
    audit log's append does: Django's cursor cost more than a short statement itself (an upsert
    ~15 µs of ~25 µs).  Otherwise (DEBUG, ``CaptureQueriesContext``, an execute wrapper, or
    PostgreSQL) through Django's cursor, so that whoever counts sees it.  The rows are read to
    the end: SQLite finishes a statement (and, in autocommit, commits it) only then.
    """
    db = connections[using]
    if db.vendor != "sqlite" or db.queries_logged or db.execute_wrappers:
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if rows else []
    db.validate_no_broken_transaction()
    db.ensure_connection()
    with db.wrap_database_errors, writer_turn(db):
        cursor = db.connection.execute(_driver_sql(sql), params)
        return cursor.fetchall() if rows else []


def prepare_insert(
    instance: Model, *, using: str = DEFAULT_DB_ALIAS, then: Callable[[], object] | None = None
) -> PreparedInsert:
    """The INSERT of ``instance`` (a new row with its primary key set), its values computed now.

    ``then`` runs after the row is written (inside the transaction).
    """
    model = type(instance)
    meta = model._meta
    if meta.parents or meta.proxy:
        raise TypeError(f"{meta.label}: a prepared INSERT writes one table (no multi-table inheritance, no proxy)")
    if instance.pk is None:
        raise ValueError(f"{meta.label}: the primary key must be known before the INSERT")
    signals.pre_save.send(sender=model, instance=instance, raw=False, using=using, update_fields=None)
    instance._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]  # save()'s own check
    db = connections[using]
    fields = _fields(model)
    params = []
    for f in fields:
        value = f.pre_save(instance, True)
        if hasattr(value, "resolve_expression"):
            raise TypeError(f"{meta.label}.{f.name}: a prepared INSERT takes values, not database expressions")
        params.append(f.get_db_prep_save(value, db))
    return PreparedInsert(instance, _insert_sql(model, using), tuple(params), using, then)


def prepare_enqueue(task: Task[..., Any], *args: Any, **kwargs: Any) -> PreparedInsert:
    """``task.enqueue(*args, **kwargs)`` on the database task backend, prepared: run it in the transaction.

    The row is the one ``django_tasks_db``'s ``DatabaseBackend.enqueue`` creates (the same columns
    and values: ``tests/test_prepared.py`` compares them).  ``task_enqueued`` is sent once the row
    is committed (``enqueue`` sends it inside the transaction, even one that then rolls back).
    """
    from django.tasks.signals import task_enqueued  # noqa: PLC0415  # the tasks framework loads backends lazily
    from django.utils.json import normalize_json  # noqa: PLC0415
    from django_tasks_db.backend import DatabaseBackend  # noqa: PLC0415
    from django_tasks_db.models import DBTaskResult  # noqa: PLC0415

    backend = task.get_backend()
    if not isinstance(backend, DatabaseBackend):
        raise TypeError(f"a prepared enqueue needs the database task backend, not {type(backend).__name__}")
    backend.validate_task(task)
    row: DBTaskResult[Any, Any] = DBTaskResult(
        id=backend._get_id(),
        args_kwargs=normalize_json({"args": args, "kwargs": kwargs}),
        priority=task.priority,
        task_path=task.module_path,
        queue_name=task.queue_name,
        run_after=task.run_after,  # type: ignore[misc]  # as the backend passes it (its pre_save receiver fills None)
        backend_name=backend.alias,
    )

    def enqueued() -> None:  # after COMMIT: building the task's result object costs ~90 µs, out of the lock
        task_enqueued.send(type(backend), task_result=row.task_result)

    return prepare_insert(row, then=lambda: transaction.on_commit(enqueued, using=row._state.db or DEFAULT_DB_ALIAS))


def _fields(model: type[Model]) -> list[Field[Any, Any]]:
    return [f for f in model._meta.local_concrete_fields if not f.generated]


@lru_cache(maxsize=64)
def _insert_sql(model: type[Model], using: str) -> str:
    quote = connections[using].ops.quote_name
    columns = ", ".join(quote(f.column) for f in _fields(model) if f.column)
    marks = ", ".join(["%s"] * len(_fields(model)))
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608  # names from the model


@lru_cache(maxsize=64)
def _driver_sql(sql: str) -> str:
    """The statement in sqlite3's parameter style (``?``); table and column names hold no ``%``."""
    return sql.replace("%s", "?")


# --- UPDATEs ---------------------------------------------------------------------------------


def update_rows(
    model: type[Model], values: dict[str, Any], *, where: dict[str, Any], using: str = DEFAULT_DB_ALIAS
) -> int:
    """``model.objects.filter(**where).update(**values)`` for plain values and exact matches on
    concrete fields: the statement's text built once per model and columns.  Returns how many
    rows it changed (``RETURNING``, SQLite 3.35+ and PostgreSQL)."""
    db = connections[using]
    params = [_field(model, name).get_db_prep_save(value, db) for name, value in values.items()]
    params += [_field(model, name).get_db_prep_value(value, db) for name, value in where.items()]
    return len(execute(_update_sql(model, tuple(values), tuple(where), using), params, using=using))


def save_fields(instance: Model, fields: Sequence[str], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """``instance.save(update_fields=fields)`` in one prepared UPDATE: each field's ``pre_save`` (the
    encryption of an ``EncryptedTextField``), its conversion, and the save signals, as ``save()``."""
    model = type(instance)
    updated = frozenset(fields)
    signals.pre_save.send(sender=model, instance=instance, raw=False, using=using, update_fields=updated)
    db = connections[using]
    params = []
    for name in fields:
        value = _field(model, name).pre_save(instance, False)
        if hasattr(value, "resolve_expression"):
            raise TypeError(f"{model._meta.label}.{name}: a prepared UPDATE takes values, not database expressions")
        params.append(_field(model, name).get_db_prep_save(value, db))
    pk = _field(model, "pk")
    params.append(pk.get_db_prep_value(instance.pk, db))
    if not execute(_update_sql(model, tuple(fields), (pk.name,), using), params, using=using):
        raise DatabaseError("Save with update_fields did not affect any rows.")
    instance._state.db = using
    signals.post_save.send(
        sender=model, instance=instance, created=False, update_fields=updated, raw=False, using=using
    )


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    found = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(found, Field) or not found.concrete:
        raise TypeError(f"{model._meta.label}.{name}: a prepared statement names concrete fields")
    return found


def _column(model: type[Model], name: str, quote: Callable[[str], str]) -> str:
    column = _field(model, name).column
    assert column is not None  # noqa: S101  # a concrete field has its column
    return quote(column)


@lru_cache(maxsize=128)
def _update_sql(model: type[Model], fields: tuple[str, ...], where: tuple[str, ...], using: str) -> str:
    quote = connections[using].ops.quote_name
    columns = ", ".join(f"{_column(model, name, quote)} = %s" for name in fields)
    matches = " AND ".join(f"{_column(model, name, quote)} = %s" for name in where)
    table, pk = quote(model._meta.db_table), _column(model, "pk", quote)
    return f"UPDATE {table} SET {columns} WHERE {matches} RETURNING {pk}"  # noqa: S608  # names from the model


# --- SELECTs ---------------------------------------------------------------------------------

_MARK = re.compile(r"(?<!%)%s")  # a parameter's place, as Django's SQLite cursor finds it


class Param(Expression):
    """A value of the statement given when it runs (``rows(name=value)``), converted for the
    database as ``output_field`` converts a value in a filter."""

    def __init__(self, name: str, output_field: Field[Any, Any]) -> None:
        super().__init__(output_field=output_field)
        self.name = name

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        return "%s", (self,)


class Params(Param):
    """A list of values (``filter(x__in=Params(...))``): as many marks as values at each run."""

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        return "(%s)", (self,)


@dataclass(frozen=True)
class _Compiled:
    pieces: tuple[str, ...]  # the text around each parameter's mark
    params: tuple[Any, ...]  # a fixed value, or the Param to bind
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]
    probe: bool = False  # LIMIT may be appended (no slice, no FOR UPDATE): PostgreSQL's first look


# How many rows a streamed statement reads on PostgreSQL before it opens a server-side cursor.
PROBE = 200


class PreparedSelect:
    """A queryset's SELECT, compiled once per connection and run with new values each time.

    ``build`` returns the queryset (a ``values_list`` of the columns wanted, with :class:`Param`
    for the values given at each run); it is called once per connection, on first use.  The
    statement goes through Django's cursor whenever someone counts or wraps statements (tests,
    DEBUG) or the backend is not SQLite, and straight to the driver otherwise (as :func:`execute`).
    Rows are fetched ``chunk`` at a time, through the backend's chunked cursor (server-side on
    PostgreSQL), so a person with 100 000 rows is never read at once; ``streamed=False`` for a
    statement that reads a row or a few (a look-up by a unique key): an ordinary cursor, as
    ``.first()`` uses, without a server-side cursor's round trips.
    """

    def __init__(self, build: Callable[[], QuerySet[Any, Any]], *, streamed: bool = True) -> None:
        self._build = build
        self._streamed = streamed
        self._compiled: weakref.WeakKeyDictionary[BaseDatabaseWrapper, _Compiled] = weakref.WeakKeyDictionary()

    def rows(self, *, using: str = DEFAULT_DB_ALIAS, chunk: int = 200, **values: Any) -> Iterator[tuple[Any, ...]]:
        db = connections[using]
        compiled = self._compiled.get(db)
        if compiled is None:
            compiled = self._compiled[db] = self._compile(db, using)
        sql, params = _bind(compiled, values, db)
        if db.vendor == "sqlite" and not db.queries_logged and not db.execute_wrappers:
            yield from _driver_rows(db, sql, params, chunk, compiled)
            return
        if self._streamed and compiled.probe and db.vendor == "postgresql":
            # A server-side cursor costs four round trips (DECLARE, describe, FETCH, CLOSE), and most
            # statements here read a person's few rows: ask for at most PROBE first, in one; only
            # when there are more, run the statement again through the server-side cursor, whole
            # (each result then comes from one statement, as a reader of either would see it).
            with db.cursor() as cursor:
                cursor.execute(sql + " LIMIT %s", [*params, PROBE + 1])
                first = cursor.fetchall()
            if len(first) <= PROBE:
                yield from _converted(first, compiled, db)
                return
            del first
        with db.chunked_cursor() if self._streamed else db.cursor() as cursor:
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(chunk):
                yield from _converted(batch, compiled, db)

    def instance[M: Model](self, model: type[M], *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> M | None:
        """The first row as a ``model`` instance (as the ORM loads one: ``Model.from_db``), or None;
        the queryset selects :func:`columns_of` ``model``."""
        for row in self.rows(using=using, chunk=1, **values):
            return model.from_db(using, columns_of(model), row)
        return None

    def _compile(self, db: BaseDatabaseWrapper, using: str) -> _Compiled:
        compiler: SQLCompiler = self._build().query.get_compiler(using)
        sql, params = compiler.as_sql()
        pieces = tuple(_MARK.split(sql))
        if len(pieces) != len(params) + 1:
            raise ValueError(f"a prepared SELECT's marks do not match its parameters: {sql}")
        # The selected columns and their converters, as the compiler's own results_iter() finds them.
        columns = [selected[0] for selected in compiler.select[: compiler.col_count]]
        converters = tuple(
            (position, tuple(found), expression)
            for position, (found, expression) in compiler.get_converters(columns).items()
        )
        query = compiler.query
        probe = query.low_mark == 0 and query.high_mark is None and not query.select_for_update
        return _Compiled(pieces, tuple(params), converters, probe)


@lru_cache(maxsize=64)
def columns_of(model: type[Model]) -> tuple[str, ...]:
    """Every column of ``model`` in the order ``from_db`` takes them (its concrete fields' attnames)."""
    return tuple(f.attname for f in model._meta.concrete_fields)


def _bind(compiled: _Compiled, values: dict[str, Any], db: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
    parts = [compiled.pieces[0]]
    params: list[Any] = []
    for param, after in zip(compiled.params, compiled.pieces[1:], strict=True):
        if isinstance(param, Params):
            given = [param.output_field.get_db_prep_value(v, db) for v in values[param.name]]
            if not given:
                raise ValueError(f"{param.name}: an IN needs at least one value")
            parts.append(", ".join(["%s"] * len(given)))
            params.extend(given)
        elif isinstance(param, Param):
            parts.append("%s")
            params.append(param.output_field.get_db_prep_value(values[param.name], db))
        else:
            parts.append("%s")
            params.append(param)
        parts.append(after)
    return "".join(parts), params


def _driver_rows(
    db: BaseDatabaseWrapper, sql: str, params: list[Any], chunk: int, compiled: _Compiled
) -> Iterator[tuple[Any, ...]]:
    db.validate_no_broken_transaction()
    db.ensure_connection()
    with db.wrap_database_errors:
        cursor = db.connection.execute(_select_driver_sql(sql), params)
    try:
        while True:
            with db.wrap_database_errors:
                batch = cursor.fetchmany(chunk)
            if not batch:
                return
            yield from _converted(batch, compiled, db)
    finally:
        cursor.close()


def _converted(
    batch: Iterable[Sequence[Any]], compiled: _Compiled, db: BaseDatabaseWrapper
) -> Iterator[tuple[Any, ...]]:
    if not compiled.converters:
        yield from (tuple(row) for row in batch)
        return
    for raw in batch:
        row = list(raw)
        for position, converters, expression in compiled.converters:
            value = row[position]
            for converter in converters:
                value = converter(value, expression, db)
            row[position] = value
        yield tuple(row)


@lru_cache(maxsize=256)
def _select_driver_sql(sql: str) -> str:
    """In sqlite3's style, as Django's SQLite cursor converts it (``?`` marks, ``%%`` a percent sign)."""
    return _MARK.sub("?", sql).replace("%%", "%")
