"""While the database or the disk is unavailable, answer 503 with Retry-After, never 500.

Django turns every uncaught exception, wherever it was raised (a view, a template, a middleware),
into a call of the 500 handler while the exception is still being handled; this handler looks at
that exception.  A database that went away (``OperationalError``: connection refused, "the database
system is starting up", "database or disk is full", "disk I/O error"; ``InterfaceError``: the
connection was already closed) or a full disk (``OSError`` ENOSPC/EDQUOT) gets a 503 page in the
visitor's language that needs nothing from the database; anything else is still a 500.

The broken connection is closed here, so the next request opens a fresh one and the site resumes
by itself once the database or disk is back.  (Django would also close it at the end of the
request, through its health check; closing it here does not depend on that.)
"""

from __future__ import annotations

import errno
import sys

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.views.defaults import server_error as django_server_error

RETRY_AFTER_SECONDS = 30
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_outage(exc: BaseException | None) -> bool:
    """A database that cannot be reached or written, or a disk that is full."""
    while exc is not None:
        if isinstance(exc, OperationalError | InterfaceError):
            return True
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def drop_broken_connections() -> None:
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue  # only a test's own transaction can still be open here
        try:
            connection.close_if_unusable_or_obsolete()
        except DatabaseError:
            connection.connection = None  # closing failed too: forget it, the next query reconnects


def server_error(request: HttpRequest) -> HttpResponse:
    exc = sys.exc_info()[1]
    if not is_outage(exc):
        return django_server_error(request)
    drop_broken_connections()
    language = translation.get_language_from_path(request.path_info) or getattr(
        request, "LANGUAGE_CODE", settings.LANGUAGE_CODE
    )
    with translation.override(language):
        body = render_to_string("503_database.html")  # no request: no context processor may query
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
