"""The visitor's cookie choice: read from its one essential cookie, cheaply, on every page.

The choice lives in the signed ``piwarden_consent`` cookie as ``<consent id>.<cookies version>.<f><a>``
(functional and analytics, 1 or 0).  The server keeps the proof (:class:`CookieConsent`, written by
:func:`piwarden.consent.actions.record_cookie_choice`); pages only read the cookie, so showing or
hiding the banner costs one HMAC and no query.  Code that would set a functional or analytics
cookie, or store anything per visitor on their consent, asks :func:`allows`.
"""

from __future__ import annotations

import datetime
import functools
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

from piwarden.policy.declaration import load_declaration

COOKIE_NAME = "piwarden_consent"
SALT = "piwarden.consent.cookies"
# The declaration says "1 year" (policy/declaration.toml, [[cookies]]): a refusal is not asked
# about again for as long (CON-05), unless the cookie declaration changes (CON-03).
MAX_AGE = int(datetime.timedelta(days=365).total_seconds())
# The proof of each choice is kept as long as a consent record (categories.consent_records).
RETENTION_DAYS = 1095

Category = Literal["functional", "analytics"]


@dataclass(frozen=True)
class CookieChoice:
    consent_id: str
    version: str
    functional: bool
    analytics: bool

    @property
    def current(self) -> bool:
        """Made under the cookie declaration in force: otherwise it no longer counts, and is asked again."""
        return self.version == load_declaration().cookies_version

    def value(self) -> str:
        return f"{self.consent_id}.{self.version}.{int(self.functional)}{int(self.analytics)}"


def new_consent_id() -> str:
    return secrets.token_hex(16)


def sends_gpc(request: HttpRequest) -> bool:
    """Global Privacy Control: ``Sec-GPC: 1`` counts as refusing analytics (INT-05)."""
    # From META, not request.headers: building that mapping parses every header of the request,
    # and a signed-in visitor's page asks this on every view (piwarden.downloads.middleware).
    return str(request.META.get("HTTP_SEC_GPC", "")).strip() == "1"


_UNREAD = object()


def current_choice(request: HttpRequest) -> CookieChoice | None:
    """The choice this browser's cookie holds (any version), or None: no cookie, or not ours."""
    cached = getattr(request, "_piwarden_cookie_choice", _UNREAD)
    if cached is not _UNREAD:
        return cached  # type: ignore[return-value]  # a CookieChoice or None, set below
    choice = _parse(request)
    request._piwarden_cookie_choice = choice  # type: ignore[attr-defined]  # read once per request
    return choice


def _parse(request: HttpRequest) -> CookieChoice | None:
    raw = request.COOKIES.get(COOKIE_NAME)
    if not raw:
        return None
    verified = _verified(raw)
    if verified is None:
        return None
    choice, signed_at = verified
    return choice if time.time() - signed_at <= MAX_AGE else None


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


@functools.lru_cache(maxsize=4096)
def _verified(raw: str) -> tuple[CookieChoice, int] | None:
    """The choice a signed value holds, and when it was signed; None if it is not ours.

    The HMAC is what reading a choice costs, and a browser sends the same value with every page:
    kept per value (a forged one is never kept as valid; at most 4096 values, a few hundred KB).
    """
    try:
        value = _signer().unsign(raw)
    except signing.BadSignature:
        return None
    parts = value.split(".")
    if len(parts) != 3 or len(parts[2]) != 2 or not set(parts[2]) <= {"0", "1"}:  # noqa: PLR2004
        return None
    consent_id, version, flags = parts
    signed_at = signing.b62_decode(raw.rsplit(":", 2)[1])
    return CookieChoice(consent_id, version, flags[0] == "1", flags[1] == "1"), signed_at


def banner_needed(request: HttpRequest) -> bool:
    """Whether the page asks: no choice yet, or one made under another cookie declaration."""
    choice = current_choice(request)
    return choice is None or not choice.current


def allows(request: HttpRequest, category: Category) -> bool:
    """Whether this visitor allowed ``category`` under the cookie declaration in force."""
    choice = current_choice(request)
    if choice is None or not choice.current:
        return False
    if category == "analytics":
        return choice.analytics and not sends_gpc(request)
    return choice.functional


def set_choice_cookie(response: HttpResponse, choice: CookieChoice) -> None:
    response.set_cookie(
        COOKIE_NAME,
        _signer().sign(choice.value()),
        max_age=MAX_AGE,
        secure=settings.CSRF_COOKIE_SECURE,
        httponly=True,  # the script never reads it: the server decides what the page shows
        samesite="Lax",
    )


def cache_key(request: HttpRequest) -> tuple[str, str]:
    """What a stored public page depends on besides language and path: the banner, and GPC in it."""
    if not banner_needed(request):
        return ("", "")
    return ("banner", "gpc" if sends_gpc(request) else "")
