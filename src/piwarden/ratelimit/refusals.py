"""Count a request and, over the rate, refuse it with a reference: the one way every limit does it.

The ``@rate_limit`` decorator (per client address), the sign-in throttle (per address typed, per
client and address, per code) and the risk rules' daily count of submissions all call
:func:`count_and_refuse`; none records a refusal of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from piwarden.ratelimit.limiter import Limit, bucket_for, hit_key, window_of
from piwarden.security.actions import Refused, refusal_for
from piwarden.security.models import Rule


@dataclass(frozen=True)
class Counted:
    limit: Limit
    refused: Refused | None  # over the rate: the refusal recorded for this counter's window
    first: bool = False  # the first refusal of the counter's window (the one that was written)


def count_and_refuse(
    request: HttpRequest,
    scope: str,
    key: str,
    rate: str,
    *,
    rule: Rule = Rule.RATE_LIMIT,
    refusal_scope: str = "",
) -> Counted:
    """Count one request for ``key`` (a client address, or what the limit is per) under ``scope`` at
    ``rate`` (``N/s|m|h|d``); over the rate, the refusal the person can cite.

    The first refusal of a counter's window is recorded (a security event, the refusal under
    ``rule`` and ``refusal_scope`` or ``scope``, an audit event); the next ones in that window cite
    it (one SELECT) and write nothing, so a flood costs one write per counter and window.
    """
    return refusal_over(request, scope, key, rate, hit_key(scope, key, rate), rule=rule, refusal_scope=refusal_scope)


def refusal_over(
    request: HttpRequest,
    scope: str,
    key: str,
    rate: str,
    limit: Limit,
    *,
    rule: Rule = Rule.RATE_LIMIT,
    refusal_scope: str = "",
) -> Counted:
    """:func:`count_and_refuse` for a count already taken (``limit``, from ``hit_key(scope, key,
    rate)``): its refusal, recorded in a durable transaction of its own, so never inside the
    transaction that took the count (``@rate_limit(joined=…)`` records it after that commit)."""
    if not limit.limited:
        return Counted(limit, None)
    most, seconds = window_of(rate)
    first = limit.count == most + 1
    refused = refusal_for(
        request,
        rule=rule,
        scope=refusal_scope or scope,
        client=bucket_for(scope, key),
        window_start=limit.window_start,
        detail={"count": limit.count, "limit": most, "window_seconds": seconds},
        retry_after=limit.retry_after,
        first=first,
    )
    return Counted(limit, refused, first)
