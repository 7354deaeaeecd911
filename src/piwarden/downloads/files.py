"""Where the published files live: ``PIWARDEN_DOWNLOADS_DIR`` (``$PIWARDEN_DATA_DIR/downloads``).

* Under the data directory, owner-only (0700, files 0600), with the rest of the site's data: not
  under ``STATIC_ROOT``, so WhiteNoise (or a web server in front of it) never serves them; the
  download view is the only way out, so that its headers (attachment, nosniff, sandbox) always apply
  and a withdrawn file is gone at once.
* Under a random name of 32 hex digits made here, never a name from the upload or the URL: the
  URL names the resource by its id, and :func:`path_of` refuses anything that is not such a name
  and checks that the path it builds stays in the directory.  No path traversal is possible
  because no path is ever built from input.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import IO

from django.conf import settings

STORED_NAME = re.compile(r"[0-9a-f]{32}")
CHUNK = 64 * 1024


class NotStored(Exception):
    """A stored name that is not one of ours (never reached from a URL: a programming error)."""


def directory() -> Path:
    path = Path(settings.PIWARDEN_DOWNLOADS_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def path_of(stored_name: str) -> Path:
    if not STORED_NAME.fullmatch(stored_name):
        raise NotStored(stored_name)
    base = directory().resolve()
    path = (base / stored_name).resolve()
    if path.parent != base:
        raise NotStored(stored_name)
    return path


def store(upload: IO[bytes]) -> tuple[str, int, str]:
    """Write ``upload`` under a new random name; returns the name, the size and the SHA-256."""
    name = secrets.token_hex(16)
    path = path_of(name)
    digest, size = hashlib.sha256(), 0
    upload.seek(0)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return name, size, digest.hexdigest()


def remove(stored_name: str) -> None:
    path_of(stored_name).unlink(missing_ok=True)
