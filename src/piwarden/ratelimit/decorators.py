"""``@rate_limit``: count a view's requests per client, and refuse those over the rate."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from piwarden.ratelimit.limiter import bucket_for, client_address, hit, window_of
from piwarden.security.actions import Refused, refusal_for
from piwarden.security.models import Rule

View = Callable[..., HttpResponse]


def rate_limit(
    scope: str,
    *,
    rate_setting: str,
    refuse: Callable[[HttpRequest, Refused], HttpResponse],
    counts: Callable[[HttpRequest], bool] = lambda request: request.method == "POST",
) -> Callable[[View], View]:
    """Count each request for which ``counts(request)`` is true under ``scope``, at the rate the
    setting ``rate_setting`` names (``N/s|m|h|d``, read per request so that tests may change it).

    Over the rate, the view does not run: ``refuse(request, refused)`` answers instead, with status
    429 and ``Retry-After`` set here; ``refused`` carries the reference the person can cite to ask
    for human review (``piwarden.security``).  The first refusal of a client in a window is recorded
    (a security event, the refusal, an audit event); the next ones in that window cite it (one
    SELECT) and write nothing, so a flood costs one write per client and window, not one per request.
    The count is taken before the view, outside any transaction
    (one autocommit upsert), so a refused request costs that statement and what ``refuse``
    does, and none of the view's work.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def limited_view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if counts(request):
                rate = getattr(settings, rate_setting)
                limit = hit(request, scope, rate)
                if limit.limited:
                    most, seconds = window_of(rate)
                    refused = refusal_for(
                        request,
                        rule=Rule.RATE_LIMIT,
                        scope=scope,
                        client=bucket_for(scope, client_address(request)),
                        window_start=limit.window_start,
                        detail={"count": limit.count, "limit": most, "window_seconds": seconds},
                        retry_after=limit.retry_after,
                        first=limit.count == most + 1,
                    )
                    response = refuse(request, refused)
                    response.status_code = 429
                    response["Retry-After"] = str(limit.retry_after)
                    return response
            return view(request, *args, **kwargs)

        return limited_view

    return decorate
