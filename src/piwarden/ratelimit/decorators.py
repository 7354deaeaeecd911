"""``@rate_limit``: count a view's requests per client, and refuse those over the rate."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from piwarden.ratelimit.actions import record_refusal
from piwarden.ratelimit.limiter import hit, window_of

View = Callable[..., HttpResponse]


def rate_limit(
    scope: str,
    *,
    rate_setting: str,
    refuse: Callable[[HttpRequest], HttpResponse],
    counts: Callable[[HttpRequest], bool] = lambda request: request.method == "POST",
) -> Callable[[View], View]:
    """Count each request for which ``counts(request)`` is true under ``scope``, at the rate the
    setting ``rate_setting`` names (``N/s|m|h|d``, read per request so that tests may change it).

    Over the rate, the view does not run: ``refuse(request)`` answers instead, with status 429
    and ``Retry-After`` set here.  The first refusal of a client in a window is recorded (the
    security role sees it, masked); the next ones in that window write nothing, so a flood costs
    one write per client and window, not one per request.  The count is taken before the view, outside any transaction
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
                    if limit.count == window_of(rate)[0] + 1:
                        record_refusal(scope)
                    response = refuse(request)
                    response.status_code = 429
                    response["Retry-After"] = str(limit.retry_after)
                    return response
            return view(request, *args, **kwargs)

        return limited_view

    return decorate
