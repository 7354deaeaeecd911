"""Per-client fixed-window rate limits: one SQL statement per request, shared by every process.

A request from client *c* under scope *s* (e.g. ``"consultation"``) with rate ``N/m`` adds one to
the counter row ``(window_start, bucket)``, where ``window_start`` is the current Unix time
rounded down to a multiple of 60 and ``bucket`` is a blind index of ``s|c``.  The request is
limited when the row's count after the increment exceeds N; the client may try again when the
window ends (``Retry-After``).

The increment is one upsert, ``INSERT … ON CONFLICT DO UPDATE … RETURNING count``: atomic in the
database (two processes racing on one bucket each get their own count), and run in autocommit,
so it is one short write transaction of its own.  SQLite (Django 6.1 requires ≥ 3.37) and
PostgreSQL (≥ 15) both support the statement; they are the two databases piwarden runs on.
Calling :func:`hit` inside an ``atomic()`` block works, but then holds the counter row (and, on
SQLite, the write lock) until that block ends: :func:`piwarden.ratelimit.decorators.rate_limit`
calls it before the view runs, outside any transaction.

Old windows are deleted in the request path too (:func:`_sweep_old_windows`); see there.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest

from piwarden.environment import parse_rate
from piwarden.prepared import execute
from piwarden.ratelimit.models import RateCounter
from piwarden.vault.blind import blind_index

# Counters are deleted once their window started more than a day ago (policy/declaration.toml,
# category rate_limit_counters: retention 1 day).  The longest window a rate can name is a day,
# so a window still running is never deleted.
KEEP_SECONDS = 86_400
# At most one sweep per process in this many seconds.
SWEEP_EVERY_SECONDS = 600
# IPv6 clients are counted per /64, the prefix one subscriber usually gets.
IPV6_PREFIX = 64

_last_sweep: float = 0.0  # per process: time.monotonic() of this process's last sweep (0: none yet)


@dataclass(frozen=True)
class Limit:
    """The outcome of one counted request."""

    limited: bool  # over the rate: refuse the request
    retry_after: int  # seconds until the current window ends (1 … window length)
    count: int  # requests counted in this window, this one included
    window_start: int = 0  # Unix seconds at which the window began


@functools.lru_cache(maxsize=16)
def window_of(rate: str) -> tuple[int, int]:
    """``"5/m"`` → ``(5, 60)``; a bad rate raises ``ImproperlyConfigured``."""
    try:
        return parse_rate(rate)
    except ValueError as exc:
        raise ImproperlyConfigured(f"rate limit: {exc}") from None


def client_address(request: HttpRequest) -> str:
    """The address to count, IPv4-mapped IPv6 as IPv4, other IPv6 cut to its /64 (:func:`client_ip`)."""
    address = client_ip(request)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False).network_address)
    return str(address)


def client_ip(request: HttpRequest) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The client's own address, IPv4-mapped IPv6 as IPv4.

    Directly on the internet that is ``REMOTE_ADDR``.  Behind proxies the operator declared
    (``PIWARDEN_BEHIND_PROXY``, ``PIWARDEN_TRUSTED_PROXIES`` = N), ``REMOTE_ADDR`` is the nearest
    proxy, shared by every visitor; each proxy appends the address it saw to ``X-Forwarded-For``,
    so the N-th entry from the right is what the outermost trusted proxy saw: the real client.
    Entries further left were written by the client and are never believed.
    """
    raw = request.META.get("REMOTE_ADDR", "")
    source = "REMOTE_ADDR"
    proxies = settings.PIWARDEN_TRUSTED_PROXIES
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            # Fewer entries than proxies: every entry was appended by a trusted proxy, the first too.
            raw = forwarded[max(len(forwarded) - proxies, 0)]
            source = "X-Forwarded-For"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        # Every client would share one counter: refuse to guess.
        raise ImproperlyConfigured(
            f"{source} is empty or not an IP address (a proxy connecting over a Unix socket, or one "
            "that does not append X-Forwarded-For?); the rate limit cannot tell clients apart"
        ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def bucket_for(scope: str, address: str) -> str:
    # Never the address itself: an IP address is personal information (PIPL Art 4), and the counter
    # only needs to tell clients apart.  The blind-index PRF (HMAC-SHA256 under a key that never
    # enters the database) gives a stable digest per scope and address that cannot be reversed or
    # tested against guessed addresses without the key.
    return blind_index("ratelimit", f"{scope}|{address}")


def hit(request: HttpRequest, scope: str, rate: str, *, now: float | None = None) -> Limit:
    """Count this request against ``rate`` (``N/s|m|h|d``) for its client under ``scope``."""
    return hit_key(scope, client_address(request), rate, now=now)


def hit_key(scope: str, key: str, rate: str, *, now: float | None = None) -> Limit:
    """Count one event against ``rate`` for ``key`` under ``scope``: a client address, or anything
    else a limit is per (the rights portal counts codes per e-mail address).  The key is kept only
    as its blind index, as an address is."""
    limit, window = window_of(rate)
    moment = int(time.time() if now is None else now)
    window_start = moment - moment % window
    count = _increment(bucket_for(scope, key), window_start)
    _sweep_old_windows(moment)
    return Limit(
        limited=count > limit, retry_after=window_start + window - moment, count=count, window_start=window_start
    )


def _table() -> tuple[BaseDatabaseWrapper, str, str, str, str]:
    """The connection, and the quoted table and column names (window_start, bucket, count)."""
    connection = connections[router.db_for_write(RateCounter)]
    quote = connection.ops.quote_name
    # The model's columns carry its field names (no db_column).
    return (
        connection,
        quote(RateCounter._meta.db_table),
        quote("window_start"),
        quote("bucket"),
        quote("count"),
    )


@functools.cache
def _increment_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    table = quote(RateCounter._meta.db_table)
    window_col, bucket_col, count_col = quote("window_start"), quote("bucket"), quote("count")
    return (
        f"INSERT INTO {table} ({window_col}, {bucket_col}, {count_col}) VALUES (%s, %s, 1) "  # noqa: S608  # names from the model; values are bound
        f"ON CONFLICT ({window_col}, {bucket_col}) DO UPDATE SET {count_col} = {table}.{count_col} + 1 "
        f"RETURNING {count_col}"
    )


def _increment(bucket: str, window_start: int) -> int:
    alias = router.db_for_write(RateCounter)
    rows = execute(_increment_sql(alias), [window_start, bucket], using=alias)  # read to the end: see execute
    return int(rows[0][0])


def _sweep_old_windows(moment: int) -> None:
    """Delete counters whose window started more than a day ago, at most once per process per 10 min.

    Why here and not in the retention housekeeping (``piwarden.site.housekeeping``): the limiter
    keeps its one-day promise wherever it is used, whether or not a housekeeping process runs
    beside it (``serve --no-housekeeping``).  Why a per-process clock and not "1 in 100 requests at random": the
    declared retention is one day, and a random sweep on a quiet site (a few posts a week) could
    leave counters for weeks; with the clock, any request more than 10 minutes after this
    process's last sweep deletes everything older than a day.  The cost is one indexed range
    ``DELETE`` (the primary key leads with ``window_start``) per process per 10 minutes, whatever
    the traffic.  A counter outlives its day by at most those 10 minutes while rate-limited
    requests keep coming; when none come it stays until the next one, which deletes it.
    """
    global _last_sweep  # noqa: PLW0603  # one float per process; a race only sweeps twice
    started = time.monotonic()
    if _last_sweep and started - _last_sweep < SWEEP_EVERY_SECONDS:
        return
    _last_sweep = started
    connection, table, window_col, _bucket_col, _count_col = _table()
    with connection.cursor() as cursor:  # one statement in autocommit (QuerySet.delete() would add BEGIN/COMMIT)
        cursor.execute(f"DELETE FROM {table} WHERE {window_col} < %s", [moment - KEEP_SECONDS])  # noqa: S608  # as above
