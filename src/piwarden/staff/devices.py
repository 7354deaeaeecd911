"""The device cookie: a long-lived random value that tells a browser a staff member used before.

Only a keyed hash of it is stored (:class:`piwarden.staff.models.KnownDevice`): the key is
derived from ``SECRET_KEY`` (Django's ``salted_hmac``), so neither the cookie nor anything about
the browser (its address, its user agent) is kept in clear.
"""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.crypto import salted_hmac

COOKIE = "piwarden_staff_device"
MAX_AGE = 400 * 24 * 60 * 60  # the longest a browser keeps a cookie (RFC 6265bis)
_SALT = "piwarden.staff.device"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


def presented(request: HttpRequest) -> str | None:
    """The device cookie this browser sent, if it is one of ours in shape (anything else: none)."""
    value = request.COOKIES.get(COOKIE, "")
    return value if _TOKEN.fullmatch(value) else None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return salted_hmac(_SALT, token, algorithm="sha256").hexdigest()


def set_cookie(response: HttpResponse, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=MAX_AGE,
        path=reverse("backoffice:inbox"),  # the console only: the public site never receives it
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )
