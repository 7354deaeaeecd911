"""The staff console's own middleware: the staff member's language, and the session's age limit.

The console speaks the staff member's language, not the public site's default.

Django's LocaleMiddleware gives every path outside ``i18n_patterns`` the default language
(Chinese) because the public site serves Chinese without a prefix.  The console is not a
public page: it follows the staff member's own choice (``StaffPreference.language``), and until
they make one, their browser (the language cookie, then ``Accept-Language``).  Sign-in errors
and django-axes' lockout page are rendered inside this middleware, so they follow it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_vary_headers

from piwarden.staff.actions import SIGNED_IN_AT, end_expired_session
from piwarden.staff.models import preferred_language


class StaffLanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._prefix: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._prefix is None:
            self._prefix = reverse("backoffice:inbox")
        if not request.path_info.startswith(self._prefix):
            return self.get_response(request)
        language = ""
        if request.user.is_authenticated:
            language = preferred_language(request.user)
        language = language or translation.get_language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        return response


class StaffSessionMiddleware:
    """A staff session ends 12 hours after sign-in however busy (``PIWARDEN_STAFF_MAX_SESSION_SECONDS``).

    The idle limit is the session store's own (``SESSION_COOKIE_AGE``, renewed on every request);
    this one counts from the sign-in time :func:`piwarden.staff.actions.sign_in_staff` stores.  A
    session signed in some other way has no sign-in time and is ended too, silently: it never
    passed the console's sign-in.  Only the console's paths are looked at: the public site must
    not read the session (its pages do not vary by cookie).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._prefix: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._prefix is None:
            self._prefix = reverse("backoffice:inbox")
        if request.path_info.startswith(self._prefix) and request.user.is_authenticated:
            started = request.session.get(SIGNED_IN_AT)
            if not isinstance(started, int):
                logout(request)
            elif (elapsed := int(time.time()) - started) >= settings.PIWARDEN_STAFF_MAX_SESSION_SECONDS:
                end_expired_session(request, signed_in_for=elapsed)
        return self.get_response(request)
