"""Page views, kept in memory and written in bulk: recording one costs a list append.

A signed-in person who allowed analytics (GPC counts as refusing it) has each public page they view
recorded (``middleware.PageViewMiddleware`` decides).  Writing a row per page would add an INSERT
and a commit to every page; instead the views wait here, per process, and are written in one
multi-row INSERT once :data:`BATCH` have gathered or the oldest is :data:`MAX_WAIT_SECONDS` old —
after the response that made them due has been sent (Django's ``request_finished``, which the WSGI
server sends once the body is out).  The account page writes what is waiting before it reads, and a
person clearing their history drops what is waiting for them.  Lost on a crash: at most what was
waiting (a few seconds of views) — the record is a convenience for the person, not evidence.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.core.signals import request_finished
from django.db import DatabaseError, close_old_connections

logger = logging.getLogger(__name__)

BATCH = 1000  # rows per INSERT: 3000 parameters (SQLite allows 32766 since 3.32)
MAX_WAIT_SECONDS = 5.0

View = tuple[uuid.UUID, str, datetime.datetime]

_lock = threading.Lock()
_waiting: list[View] = []
_oldest = 0.0  # time.monotonic() of the oldest waiting view
_due = False


def note(person_id: uuid.UUID, path: str, at: datetime.datetime) -> None:
    """Keep one view until the next flush."""
    global _oldest, _due  # noqa: PLW0603  # the process's one buffer
    with _lock:
        if not _waiting:
            _oldest = time.monotonic()
        _waiting.append((person_id, path, at))
        if len(_waiting) >= BATCH or time.monotonic() - _oldest >= MAX_WAIT_SECONDS:
            _due = True


def waiting() -> int:
    return len(_waiting)


def take(person_id: uuid.UUID | None = None) -> list[View]:
    """Remove and return what waits (only ``person_id``'s, if given)."""
    global _due  # noqa: PLW0603
    with _lock:
        if person_id is None:
            taken = _waiting[:]
            _waiting.clear()
        else:
            taken = [v for v in _waiting if v[0] == person_id]
            _waiting[:] = [v for v in _waiting if v[0] != person_id]
        _due = bool(_waiting) and _due
        return taken


Writer = Callable[[list[View]], int]
_writer: Writer | None = None  # actions.record_page_views, given by connect() (actions imports this module)


def flush() -> int:
    """Write every waiting view in one statement; returns how many were written."""
    views = take()
    if not views or _writer is None:
        return 0
    try:
        return _writer(views)
    except DatabaseError:
        # The database is down: the views are lost (a convenience, not evidence); the site goes on.
        logger.warning("page views not recorded: the database refused them (%d lost)", len(views))
        return 0


def _after_response(**_: Any) -> None:
    if _due:
        flush()


def _at_exit() -> None:
    if _waiting:
        try:
            flush()
        except Exception:  # noqa: BLE001  # the process is ending: say so, never raise
            logger.warning("page views not recorded at exit (%d lost)", len(_waiting))


def connect(writer: Writer) -> None:
    """Called once at start-up (``DownloadsConfig.ready``) with the write path of page views."""
    global _writer  # noqa: PLW0603
    _writer = writer
    # Before Django's own receiver closes the request's database connection (CONN_MAX_AGE): the
    # flush then writes on the connection the signed-in request already opened, instead of
    # opening one of its own.  Signals call receivers in the order they were connected.
    request_finished.disconnect(close_old_connections)
    request_finished.connect(_after_response, dispatch_uid="piwarden.downloads.browsing")
    request_finished.connect(close_old_connections)
    atexit.register(_at_exit)
