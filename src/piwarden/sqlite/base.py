"""Django's SQLite backend with the site's writers queued on an OS file lock.

SQLite has one write lock.  A writer that finds it taken waits in SQLite's busy handler, which
sleeps 1, 2, 5, 10 … ms between tries however soon the lock is freed: under two workers a POST
that holds the lock for about a millisecond makes the other worker's writers sleep several.
Here every write transaction (``BEGIN IMMEDIATE``, the site's transaction mode) and every write
in autocommit that goes through :func:`writer_turn` first takes an exclusive ``flock`` on
``<database>.writers``, polled every 0.1 to 0.5 ms, and lets it go after ``COMMIT`` or
``ROLLBACK``: a waiting writer starts within half a millisecond of the last one's end.

The lock only orders the site's own writers; SQLite's lock still decides.  A writer that does
not take it (another program, a write outside a transaction) is met by SQLite's busy handler as
before, and one that waited ``busy_timeout`` for the file lock goes on without it, so nothing
waits longer than it did without this backend.  Each connection opens the lock file itself
(``flock`` locks belong to an open file, so two connections of one process exclude each other),
again after a fork.  An in-memory database has no file: nothing is locked.

**Checkpoints off the write path.**  In WAL mode SQLite copies the log back into the database
(a checkpoint) in whichever commit finds the log over ``wal_autocheckpoint`` pages (1 000 by
default): that commit then also writes the pages back and waits for two ``fsync`` (the log, then
the database, as ``synchronous=NORMAL`` asks) — 2 ms of CPU and ~20 ms of disk on this site's
host, every ~25 consultation POSTs, inside the request and while the writers' turn is held, so
the other worker's writers waited too.  In the web server's workers the checkpoints run in a
thread of the process (:class:`Checkpointer`): a commit only wakes it, and it checkpoints at most every
:data:`CHECKPOINT_EVERY` seconds on a connection of its own (``PASSIVE``: it never waits for, nor
blocks, a reader or a writer).  The same pages are written back and synced as before, so
durability is unchanged; what changed is who waits for the disk.  SQLite's own checkpoint stays
as a backstop at :data:`BACKSTOP_PAGES` (should the thread fall behind or die, the log never grows
past that).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db.backends.sqlite3 import base, operations

from piwarden.audit import appendonly

POLL_FIRST, POLL_MOST = 0.0001, 0.0005  # seconds between tries for a taken lock
WAIT_MOST = 5.0  # as PRAGMA busy_timeout=5000: then go on and let SQLite decide
CHECKPOINT_EVERY = 0.1  # seconds: a checkpoint at most this often per process and database
BACKSTOP_PAGES = 10_000  # SQLite's own checkpoint in a commit, past this many pages of log (40 MB)
IDLE_EXIT = 30.0  # seconds without a write after which the thread ends (the next write starts one)

logger = logging.getLogger(__name__)


class Checkpointer:
    """Checkpoints of one database file, run by a daemon thread of this process (see the module's
    docstring): :meth:`wake` after a write; the thread checkpoints once per :data:`CHECKPOINT_EVERY`
    at most, however many writes woke it, and ends after :data:`IDLE_EXIT` seconds without one.

    Only in processes that :meth:`enable` it: the web server's workers (``piwarden.gunicorn_conf``),
    which write all day and never fork.  Elsewhere SQLite checkpoints in the commit as it always
    did: a thread would stop ``piwarden audit verify`` from forking its workers (``audit.chain``).
    """

    enabled = False
    _running: dict[tuple[int, str], Checkpointer] = {}
    _lock = threading.Lock()

    def __init__(self, path: str) -> None:
        self.path = path
        self.key = (os.getpid(), path)
        self._due = threading.Event()
        self.last: tuple[int, int, int] | None = None  # the last checkpoint's (busy, log pages, pages written back)
        self.thread = threading.Thread(target=self._run, name=f"sqlite-checkpoint {path}", daemon=True)
        self.thread.start()

    @classmethod
    def enable(cls) -> None:
        """Run this process's checkpoints in the background, for the connections it opens from now on."""
        cls.enabled = True

    @classmethod
    def wake(cls, path: str) -> Checkpointer:
        """Tell this process's checkpointer of ``path`` that a write committed (started if none runs)."""
        key = (os.getpid(), path)
        with cls._lock:
            found = cls._running.get(key)
            if found is None:
                found = cls._running[key] = cls(path)
            found._due.set()
        return found

    def _run(self) -> None:
        while True:
            if not self._due.wait(IDLE_EXIT):
                with Checkpointer._lock:  # a write waking it now finds it gone and starts another
                    if not self._due.is_set():
                        del Checkpointer._running[self.key]
                        return
            time.sleep(CHECKPOINT_EVERY)  # the writes of that span share one checkpoint (two fsyncs)
            self._due.clear()
            try:
                self.checkpoint()
            except sqlite3.Error as exc:  # the database removed or replaced: the next write wakes it again
                logger.warning("checkpoint of %s failed: %s", self.path, exc)

    def checkpoint(self) -> tuple[int, int, int]:
        """``PRAGMA wal_checkpoint(PASSIVE)`` on a connection opened for it (``mode=rw``: a missing
        database is not created): (busy, pages in the log, pages written back)."""
        uri = f"{Path(self.path).resolve().as_uri()}?mode=rw"
        with contextlib.closing(sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)) as db:
            row = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.last = (int(row[0]), int(row[1]), int(row[2]))
        return self.last


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style: Any, tables: Any, *, reset_sequences: bool = False, allow_cascade: bool = False) -> Any:
        # The audit log's triggers refuse the DELETE: dropped around it, in flush's transaction.
        statements = super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return appendonly.around_flush(self.connection.vendor, tables, statements)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    _writer_fd: int | None = None
    _writer_pid: int = 0
    _writer_held: bool = False
    _checkpoints_apart: bool = False  # this connection leaves its checkpoints to the Checkpointer

    def _lock_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        if not name or name == ":memory:" or "mode=memory" in name:
            return None
        return f"{name}.writers"

    def _writer_file(self) -> int | None:
        if self._writer_fd is not None and self._writer_pid == os.getpid():
            return self._writer_fd
        path = self._lock_path()
        if path is None:
            return None
        try:
            self._writer_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return None  # no lock file, no queue: SQLite's busy handler alone, as before
        self._writer_pid = os.getpid()
        return self._writer_fd

    def get_new_connection(self, conn_params: Any) -> Any:
        conn = super().get_new_connection(conn_params)
        self._checkpoints_apart = Checkpointer.enabled and self._lock_path() is not None
        if self._checkpoints_apart:
            # The checkpoints run in this process's Checkpointer; SQLite's own only past the backstop.
            conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        return conn

    def wrote(self) -> None:
        """A write committed: wake this process's checkpointer of the database, if it has one."""
        if self._checkpoints_apart:
            Checkpointer.wake(str(self.settings_dict["NAME"]))

    def take_writer_turn(self) -> None:
        """Wait for the site's other writers (see the module's docstring)."""
        fd = self._writer_file()
        if fd is None or self._writer_held:
            return
        pause, deadline = POLL_FIRST, time.monotonic() + WAIT_MOST
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return
                time.sleep(pause)
                pause = min(pause * 2, POLL_MOST)
                continue
            except OSError:
                return
            self._writer_held = True
            return

    def end_writer_turn(self) -> None:
        if self._writer_held and self._writer_fd is not None:
            self._writer_held = False
            fcntl.flock(self._writer_fd, fcntl.LOCK_UN)
            self.wrote()

    def _start_transaction_under_autocommit(self) -> None:
        self.take_writer_turn()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # Django's, not in the stubs
        except BaseException:
            self.end_writer_turn()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()  # type: ignore[misc]
        finally:
            self.end_writer_turn()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()  # type: ignore[misc]
        finally:
            self.end_writer_turn()

    def _close(self) -> Any:
        try:
            return super()._close()  # type: ignore[misc]
        finally:
            self.end_writer_turn()
            if self._writer_fd is not None and self._writer_pid == os.getpid():
                os.close(self._writer_fd)
            self._writer_fd = None


@contextmanager
def writer_turn(connection: Any) -> Iterator[None]:
    """A write in autocommit, in its turn among the site's writers (no-op inside a transaction,
    which took its turn at BEGIN, and on other backends)."""
    if not isinstance(connection, DatabaseWrapper) or connection.in_atomic_block:
        yield
        return
    connection.take_writer_turn()
    try:
        yield
    finally:
        connection.end_writer_turn()
