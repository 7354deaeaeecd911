"""``@rate_limit``: count a view's requests per client, and refuse those over the rate."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from piwarden.ratelimit.limiter import client_address
from piwarden.ratelimit.refusals import count_and_refuse
from piwarden.security.actions import Refused

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
    for human review (``piwarden.security``), counted and recorded as every limit does it
    (:func:`piwarden.ratelimit.refusals.count_and_refuse`).  The count is taken before the view, outside any transaction
    (one autocommit upsert), so a refused request costs that statement and what ``refuse``
    does, and none of the view's work.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def limited_view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if counts(request):
                counted = count_and_refuse(request, scope, client_address(request), getattr(settings, rate_setting))
                if counted.refused is not None:
                    response = refuse(request, counted.refused)
                    response.status_code = 429
                    response["Retry-After"] = str(counted.limit.retry_after)
                    return response
            return view(request, *args, **kwargs)

        return limited_view

    return decorate
