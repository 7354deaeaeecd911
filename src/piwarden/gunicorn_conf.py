"""gunicorn settings for piwarden: ``gunicorn -c python:piwarden.gunicorn_conf piwarden.wsgi``.

``piwarden serve`` uses it; a deployment that runs gunicorn itself should too.

* Forwarded headers: gunicorn believes ``X-Forwarded-Proto`` (and ``X-Forwarded-Ssl``,
  ``X-Forwarded-Protocol``) from 127.0.0.1 by default, so a local request claiming HTTPS got HSTS.
  It trusts them only when ``PIWARDEN_BEHIND_PROXY`` is on, and then from the addresses in
  gunicorn's own ``FORWARDED_ALLOW_IPS`` (default: this machine, where a reverse proxy runs).
* Files it creates are owner-only (``umask`` 077): the data directory holds the database and keys.
* Request lines up to gunicorn's maximum reach Django (``piwarden.site.limits``).
* The ``Server`` header does not name the server software (nothing for a scanner to match).
* Each worker serves with two threads (``gthread``): while one request waits for SQLite's write
  lock (the site's writers queue on a file lock, ``piwarden.sqlite.base``), or for its commit's
  disk, the other runs.  Each thread has its own database connection, so its own open file
  description of the lock file: the queue orders threads as it orders processes.  Connections
  close after each response, as the sync workers closed them (``keepalive = 0``): the proxy in
  front, or the browser, opens the next.  docs/performance.md, "The consultation POST: one turn
  for the counts".
"""

from __future__ import annotations

import os

from gunicorn.http import wsgi as _gunicorn_wsgi  # type: ignore[import-untyped]  # gunicorn ships no types

from piwarden.environment import envbool
from piwarden.site.limits import REQUEST_LINE_LIMIT

forwarded_allow_ips = (
    os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1") if envbool("PIWARDEN_BEHIND_PROXY", default=False) else ""
)
# Long request lines reach Django, which answers over-long URLs with the site's own 414 page.
limit_request_line = REQUEST_LINE_LIMIT
worker_class = "gthread"
threads = 2
keepalive = 0
umask = 0o077  # gunicorn's own files (sockets, worker heartbeat files)
os.umask(umask)  # and everything the site writes (settings.py does the same for every piwarden process)

_default_headers = _gunicorn_wsgi.Response.default_headers


def _headers_without_server(response: object) -> list[str]:
    # gunicorn has no setting for this header; it always writes "Server: gunicorn".  Drop the line.
    return [line for line in _default_headers(response) if not line.lower().startswith("server:")]


_gunicorn_wsgi.Response.default_headers = _headers_without_server
