"""INSERTs prepared before the transaction that runs them: ``Model.save()`` of a new row in two halves.

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model, signals

from piwarden.sqlite.base import writer_turn

if TYPE_CHECKING:
    from django.db.models import Field
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
