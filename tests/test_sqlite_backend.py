"""The SQLite backend's queue of writers (``piwarden.sqlite.base``): a writer waits for the one
holding the turn and starts as soon as it ends; one held too long is waited out, not forever."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from piwarden.sqlite import base

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's own backend")


@pytest.fixture(autouse=True)
def _own_files(django_db_blocker: Any) -> Iterator[None]:
    """These connections open files of their own in tmp_path, not the test database."""
    with django_db_blocker.unblock():
        yield


def wrapper(path: Path) -> base.DatabaseWrapper:
    settings = {**connection.settings_dict, "NAME": str(path)}
    db = base.DatabaseWrapper(settings, alias=f"queue-{path.name}")
    db.ensure_connection()
    return db


def test_a_writer_waits_for_the_turn_and_starts_when_it_ends(tmp_path: Path) -> None:
    first, second = wrapper(tmp_path / "q.sqlite3"), wrapper(tmp_path / "q.sqlite3")
    first.take_writer_turn()
    started: list[float] = []

    def wait() -> None:
        second.take_writer_turn()
        started.append(time.monotonic())

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    assert not started  # still waiting
    released = time.monotonic()
    first.end_writer_turn()
    waiter.join(5)
    assert started
    assert started[0] - released < 0.05  # woken within a poll, not after SQLite's sleeps
    assert second._writer_held
    second.end_writer_turn()
    first.close()
    second.close()


def test_a_turn_held_too_long_is_waited_out_then_sqlite_decides(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(base, "WAIT_MOST", 0.3)
    first, second = wrapper(tmp_path / "q.sqlite3"), wrapper(tmp_path / "q.sqlite3")
    first.take_writer_turn()
    began = time.monotonic()
    second.take_writer_turn()
    assert 0.3 <= time.monotonic() - began < 2
    assert not second._writer_held  # went on without the turn
    first.end_writer_turn()
    first.close()
    second.close()


def test_a_transaction_holds_the_turn_from_begin_to_commit_or_rollback(tmp_path: Path) -> None:
    db = wrapper(tmp_path / "q.sqlite3")
    db._start_transaction_under_autocommit()
    assert db._writer_held
    db.commit()
    assert not db._writer_held
    db._start_transaction_under_autocommit()
    db.rollback()
    assert not db._writer_held
    db.close()
    assert db._writer_fd is None


@pytest.fixture
def checkpoints_apart(monkeypatch) -> Iterator[None]:
    """This process's checkpoints in the background, as a server worker's; its thread gone afterwards
    (a thread would stop the audit verification's forked workers in later tests)."""
    monkeypatch.setattr(base.Checkpointer, "enabled", True)
    monkeypatch.setattr(base, "IDLE_EXIT", 0.3)
    yield
    deadline = time.monotonic() + 20
    while base.Checkpointer._running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not base.Checkpointer._running
    assert threading.active_count() == 1


@pytest.mark.usefixtures("checkpoints_apart")
def test_commits_leave_the_checkpoints_to_the_processs_checkpointer(tmp_path: Path, monkeypatch) -> None:
    """A commit does not copy the log back (SQLite's own checkpoint waits for the backstop); a
    thread of the process does, soon after, on a connection of its own, and writes every page back."""
    monkeypatch.setattr(base, "CHECKPOINT_EVERY", 3.0)  # the writes below are done before it runs
    path = tmp_path / "c.sqlite3"
    db = wrapper(path)
    with db.cursor() as cursor:
        assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == base.BACKSTOP_PAGES
        cursor.execute("CREATE TABLE t (x BLOB)")
    for _ in range(30):  # 30 transactions of 50 pages: past SQLite's default threshold of 1 000
        db._start_transaction_under_autocommit()
        with db.cursor() as cursor:
            cursor.executemany("INSERT INTO t VALUES (randomblob(4000))", [()] * 50)
        db.commit()
    checkpointer = base.Checkpointer._running[(os.getpid(), str(path))]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and checkpointer.last is None:
        time.sleep(0.05)
    assert checkpointer.last is not None
    busy, log, written_back = checkpointer.last
    assert log >= 1500  # the log was not reset by a commit's checkpoint: no commit ran one
    assert (busy, written_back) == (0, log)  # every page written back, by the thread
    db.close()


@pytest.mark.usefixtures("checkpoints_apart")
def test_an_autocommit_write_in_its_turn_wakes_the_checkpointer(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(base, "CHECKPOINT_EVERY", 0.01)
    path = tmp_path / "a.sqlite3"
    db = wrapper(path)
    with db.cursor() as cursor:
        cursor.execute("CREATE TABLE t (x BLOB)")
    with base.writer_turn(db), db.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (randomblob(100))")
    checkpointer = base.Checkpointer._running[(os.getpid(), str(path))]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and checkpointer.last is None:
        time.sleep(0.02)
    assert checkpointer.last is not None
    assert checkpointer.last[0] == 0  # not busy: it needed no turn of the writers
    db.close()


def test_elsewhere_sqlite_checkpoints_in_the_commit_as_always(tmp_path: Path) -> None:
    """Without enable() (commands, the task worker, tests): no thread, SQLite's own threshold."""
    assert not base.Checkpointer.enabled
    db = wrapper(tmp_path / "n.sqlite3")
    with db.cursor() as cursor:
        assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # SQLite's default
        cursor.execute("CREATE TABLE t (x BLOB)")
    db._start_transaction_under_autocommit()
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
    db.commit()
    assert not base.Checkpointer._running
    db.close()
