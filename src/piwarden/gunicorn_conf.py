"""gunicorn settings for piwarden: ``gunicorn -c python:piwarden.gunicorn_conf piwarden.wsgi``.

``piwarden serve`` uses it; a deployment that runs gunicorn itself should too.

* Forwarded headers: gunicorn believes ``X-Forwarded-Proto`` (and ``X-Forwarded-Ssl``,
  ``X-Forwarded-Protocol``) from 127.0.0.1 by default, so a local request claiming HTTPS got HSTS.
  It trusts them only when ``PIWARDEN_BEHIND_PROXY`` is on, and then from the addresses in
  gunicorn's own ``FORWARDED_ALLOW_IPS`` (default: this machine, where a reverse proxy runs).
* Files it creates are owner-only (``umask`` 077): the data directory holds the database and keys.
* Request lines up to gunicorn's maximum reach Django (``piwarden.site.limits``).
* The ``Server`` header does not name the server software (nothing for a scanner to match).
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
umask = 0o077  # gunicorn's own files (sockets, worker heartbeat files)
os.umask(umask)  # and everything the site writes (settings.py does the same for every piwarden process)

_default_headers = _gunicorn_wsgi.Response.default_headers


def _headers_without_server(response: object) -> list[str]:
    # gunicorn has no setting for this header; it always writes "Server: gunicorn".  Drop the line.
    return [line for line in _default_headers(response) if not line.lower().startswith("server:")]


_gunicorn_wsgi.Response.default_headers = _headers_without_server
