"""``@rate_limit``: count a view's requests per client, and refuse those over the rate."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from piwarden.ratelimit.limiter import client_address, hit_key
from piwarden.ratelimit.refusals import refusal_over
from piwarden.security.actions import Refused

View = Callable[..., HttpResponse]


def rate_limit(
    scope: str,
    *,
    rate_setting: str,
    refuse: Callable[[HttpRequest, Refused], HttpResponse],
    counts: Callable[[HttpRequest], bool] = lambda request: request.method == "POST",
    joined: Callable[[HttpRequest], Any] | None = None,
) -> Callable[[View], View]:
    """Count each request for which ``counts(request)`` is true under ``scope``, at the rate the
    setting ``rate_setting`` names (``N/s|m|h|d``, read per request so that tests may change it).

    Over the rate, the view does not run: ``refuse(request, refused)`` answers instead, with status
    429 and ``Retry-After`` set here; ``refused`` carries the reference the person can cite to ask
    for human review (``piwarden.security``), counted and recorded as every limit does it
    (:func:`piwarden.ratelimit.refusals.count_and_refuse`).  The count is taken before the view, outside any transaction
    (one autocommit upsert), so a refused request costs that statement and what ``refuse``
    does, and none of the view's work.

    ``joined(request)``: other writes the view needs committed before its work starts (the risk
    rules' count, the CAPTCHA's use), made in the count's own short write transaction, after the
    count and only when it is under the rate: one turn of SQLite's write lock and one commit for
    all of them, still committed before the view runs, so that no rollback of the view's work
    takes any of them back.  What it returns is ``request.joined`` for the view (``None`` for a
    request that is not counted).  A refusal is recorded after that commit (its own durable
    transaction).
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def limited_view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            request.joined = None  # type: ignore[attr-defined]  # what `joined` returned, for the view
            if counts(request):
                key, rate = client_address(request), getattr(settings, rate_setting)
                with nullcontext() if joined is None else transaction.atomic():
                    limit = hit_key(scope, key, rate)
                    if joined is not None and not limit.limited:
                        request.joined = joined(request)  # type: ignore[attr-defined]
                counted = refusal_over(request, scope, key, rate, limit)
                if counted.refused is not None:
                    response = refuse(request, counted.refused)
                    response.status_code = 429
                    response["Retry-After"] = str(counted.limit.retry_after)
                    return response
            return view(request, *args, **kwargs)

        return limited_view

    return decorate
