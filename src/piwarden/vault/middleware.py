"""Fail closed when keys are unavailable, and never keep unwrapped keys past a request."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from piwarden.vault.crypto import forget_cached_keys
from piwarden.vault.keys import VaultUnavailable

logger = logging.getLogger("piwarden.vault")

STAFF_NAMESPACE = "backoffice"  # the staff console's URL namespace (piwarden.backoffice.urls)


class FailClosedMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            forget_cached_keys()

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, VaultUnavailable):
            return None
        # The transaction that needed the key has rolled back: nothing was written.
        logger.error("vault unavailable, refusing %s %s: %s", request.method, request.path, exception)
        # Staff are told what to do about it (tell the operator); visitors that nothing they sent was kept.
        match = request.resolver_match
        staff = match is not None and STAFF_NAMESPACE in match.namespaces
        body = render_to_string("503_vault_staff.html" if staff else "503_vault.html", request=request)
        response = HttpResponse(body, status=503)
        response["Retry-After"] = "120"
        response["Cache-Control"] = "no-store"
        return response
