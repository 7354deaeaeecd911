"""The SQLite backend's queue of writers (``piwarden.sqlite.base``): a writer waits for the one
holding the turn and starts as soon as it ends; one held too long is waited out, not forever."""

from __future__ import annotations

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
