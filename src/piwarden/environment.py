"""Typed readers for settings that come from the environment.

Every reader fails with :class:`ImproperlyConfigured` naming the variable and
what was wrong, so that a bad deployment stops at start-up with one clear line
(the ``piwarden`` command prints it without a traceback).

``NAME_FILE`` is honoured for secrets: the value is read from that file, so
that secrets can come from Docker/Kubernetes secret mounts instead of the
process environment.
"""

from __future__ import annotations

import datetime
import os
import re
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str) -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use one of: on, off, true, false, 1, 0")


def envint(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum of {minimum}")
    return value


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def envchoice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of: {', '.join(choices)}")
    return value


_RATE = re.compile(r"([1-9][0-9]*)/([smhd])")
_RATE_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(value: str) -> tuple[int, int]:
    """``"5/m"`` → ``(5, 60)``: at most N requests per second, minute, hour or day (window in seconds).

    Raises ``ValueError`` for anything else; callers name the setting in their own error.
    """
    match = _RATE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a rate like 5/m")
    return int(match[1]), _RATE_UNIT_SECONDS[match[2]]


def envrate(name: str, default: str) -> str:
    """A rate such as ``5/m`` (see :func:`parse_rate`), checked at start-up."""
    raw = os.environ.get(name, default)
    try:
        parse_rate(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate like 5/m (a count per s, m, h or d)") from None
    return raw.strip()


def envsecret(name: str) -> str | None:
    """Read ``name`` or the file named by ``name_FILE``; ``None`` when neither is set."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc.strerror}") from None
        if not value:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} is empty")
        return value
    raw = os.environ.get(name)
    if raw is not None and not raw.strip():
        raise ImproperlyConfigured(f"{name} is set but empty")
    return raw


def persistent_secret(path: Path) -> str:
    """Return the secret stored at ``path``, creating it (mode 0600) when its directory exists.

    This is the embedded default for a one-machine install; deployments set
    ``SECRET_KEY`` or ``SECRET_KEY_FILE`` instead.  Without the directory nothing is created (a
    command run in the wrong place must not leave a stray data directory behind) and the secret
    lives only as long as this process: ``piwarden serve`` creates the directory and the file
    before it starts the processes that sign anything.
    """
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(50)
    if not path.parent.is_dir():
        return value
    # Written whole under a private name, then linked into place: a process starting at the same
    # moment either sees no file or the whole secret, and exactly one secret wins.
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        os.link(partial, path)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    finally:
        partial.unlink()
    return value


def served_url(host: str, port: int) -> str:
    """The address a site bound to ``host:port`` is reached at from this machine."""
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104  # a wildcard bind: name this machine's loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


_HOURS = re.compile(r"([0-9]{1,2}):([0-9]{2})-([0-9]{1,2}):([0-9]{2})")


def envhours(name: str, default: str) -> tuple[datetime.time, datetime.time]:
    """``HH:MM-HH:MM`` (start inclusive, end exclusive, the same day) as two times."""
    raw = os.environ.get(name, default).strip()
    match = _HOURS.fullmatch(raw)
    try:
        if match is None:
            raise ValueError
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = datetime.time(h1, m1), datetime.time(h2, m2)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a span of hours such as 09:00-18:00") from None
    if end <= start:
        raise ImproperlyConfigured(f"{name}={raw!r} ends before it starts (the span must be within one day)")
    return start, end
