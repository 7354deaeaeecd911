"""The risk rules of the public forms (policy §一(I)1.2: "identify security risks"), before any work.

Per client address (as the rate limit counts it: IPv6 per /64), every submission of a public form
(the consultation and the rights request) counts in one counter per UTC day (scope ``risk``):

* past ``PIWARDEN_RISK_HARDER_CAPTCHA`` submissions, the form asks a harder CAPTCHA (a longer
  challenge; the form says why);
* past ``PIWARDEN_RISK_BLOCK``, the client is refused until the day ends: a refusal page with a
  reference the person can cite to ask for human review (PIPL 24), which the security role may
  lift (``security.actions.decide_refusal``).

Wrong CAPTCHA answers count too, per client and ``PIWARDEN_RISK_CAPTCHA_FAILURES`` window: past
that rate, the day's counter is raised past the block, so the client is blocked for the rest of
the day by the same rule check, with a refusal that names the CAPTCHA rule.

Cost on an accepted submission: the one upsert of the counter (``ratelimit.limiter.hit_key``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, router
from django.http import HttpRequest

from piwarden.prepared import execute
from piwarden.ratelimit.limiter import Limit, bucket_for, client_address, hit_key, window_of
from piwarden.ratelimit.models import RateCounter
from piwarden.ratelimit.refusals import refusal_over
from piwarden.security.actions import Refused, refusal_for
from piwarden.security.models import Rule

RISK_SCOPE = "risk"
DAY = 86_400


@dataclass(frozen=True)
class Risk:
    harder: bool  # ask the harder CAPTCHA
    refused: Refused | None  # blocked: show the refusal page instead


def assess_submission(request: HttpRequest, scope: str) -> Risk:
    """Count one submission of a public form for the client; say whether to ask more, or refuse."""
    return assessed(request, scope, count_submission(request))


def count_submission(request: HttpRequest) -> Limit:
    """Count one submission of a public form for the client (one upsert), and nothing more: a
    write that may join another short transaction (the consultation's, with its rate limit's count);
    :func:`assessed` then tells what the count means, once it is committed."""
    return hit_key(RISK_SCOPE, client_address(request), f"{settings.PIWARDEN_RISK_BLOCK}/d")


def assessed(request: HttpRequest, scope: str, limit: Limit) -> Risk:
    """What a committed count of :func:`count_submission` means: a harder CAPTCHA, or a refusal
    (recorded now, in a durable transaction of its own, for the first of the day)."""
    rate = f"{settings.PIWARDEN_RISK_BLOCK}/d"
    counted = refusal_over(
        request, RISK_SCOPE, client_address(request), rate, limit, rule=Rule.MANY_SUBMISSIONS, refusal_scope=scope
    )
    return Risk(
        harder=counted.refused is not None or counted.limit.count > settings.PIWARDEN_RISK_HARDER_CAPTCHA,
        refused=counted.refused,
    )


def count_captcha_failure(request: HttpRequest, scope: str) -> Refused | None:
    """Count one wrong CAPTCHA answer; past the rate, block the client for the rest of the day."""
    rate = settings.PIWARDEN_RISK_CAPTCHA_FAILURES
    address = client_address(request)
    limit = hit_key("captcha_failures", address, rate)
    if not limit.limited:
        return None
    most, seconds = window_of(rate)
    window_start, retry_after = _block_for_the_day(bucket_for(RISK_SCOPE, address), settings.PIWARDEN_RISK_BLOCK)
    return refusal_for(
        request,
        rule=Rule.CAPTCHA_FAILURES,
        scope=scope,
        client=bucket_for(RISK_SCOPE, address),
        window_start=window_start,
        detail={"count": limit.count, "limit": most, "window_seconds": seconds},
        retry_after=retry_after,
        first=limit.count == most + 1,
    )


def _block_for_the_day(bucket: str, block: int) -> tuple[int, int]:
    """Raise the client's submission counter of today past ``block`` (one upsert); its window and
    the seconds left in it."""
    moment = int(time.time())
    window_start = moment - moment % DAY
    connection = connections[router.db_for_write(RateCounter)]
    quote = connection.ops.quote_name
    table, start, key, count = (quote(n) for n in (RateCounter._meta.db_table, "window_start", "bucket", "count"))
    sql = (
        f"INSERT INTO {table} ({start}, {key}, {count}) VALUES (%s, %s, %s) "  # noqa: S608  # names from the model
        f"ON CONFLICT ({start}, {key}) DO UPDATE SET {count} = "
        f"CASE WHEN {table}.{count} > %s THEN {table}.{count} ELSE %s END"
    )
    execute(sql, [window_start, bucket, block + 1, block, block + 1], using=connection.alias, rows=False)
    return window_start, window_start + DAY - moment
