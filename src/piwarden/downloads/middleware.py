"""Records the public pages a signed-in person views, when they allowed analytics (``browsing.py``)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from piwarden.consent.cookies import allows
from piwarden.downloads import browsing
from piwarden.downloads.visitors import signed_in_person

# Only the public site's pages, never the console, the API or files; a path is stored as asked
# (our own URLs hold no personal value), without its query string.
RECORDED_NAMESPACES = frozenset({"site", "downloads"})
MAX_PATH = 200


class PageViewMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        person = signed_in_person(request)
        if person is None or request.method != "GET" or response.status_code != 200:  # noqa: PLR2004
            return response
        match = request.resolver_match
        if match is None or match.namespace not in RECORDED_NAMESPACES or len(request.path) > MAX_PATH:
            return response
        if match.url_name == "file":
            return response  # a download is the download history's, under functional (views.download)
        if allows(request, "analytics"):  # GPC counts as refusing analytics
            browsing.note(person.pk, request.path, timezone.now())
        return response
