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
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.sqlite3 import base, operations

from piwarden.audit import appendonly

POLL_FIRST, POLL_MOST = 0.0001, 0.0005  # seconds between tries for a taken lock
WAIT_MOST = 5.0  # as PRAGMA busy_timeout=5000: then go on and let SQLite decide


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
