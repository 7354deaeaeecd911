"""The notice of a material change on every page, until the visitor dismisses it (CHG-01).

The latest version that made a material change (:func:`piwarden.policy.versions.material_notice`)
is announced on every public page.  Dismissing it (a plain form, no script) sets the strictly
necessary ``piwarden_notice`` cookie (declared in the cookie declaration): the signed number of the
version dismissed.  A later material version is shown again, whatever was dismissed before.

A signed-in account holder's dismissal is recorded for the account too (policy §十: "recorded for
account holders"), so that the notice stays closed on another device.  This app knows no account:
the accounts app registers the reader of that record (:func:`register_dismissal_record`, from its
``AppConfig.ready``), and the number dismissed is the highest of the cookie's and the records'.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

from piwarden.policy.models import PolicyVersion
from piwarden.policy.versions import material_notice

COOKIE_NAME = "piwarden_notice"
SALT = "piwarden.policy.notice"
MAX_AGE = int(datetime.timedelta(days=365).total_seconds())  # "1 year" in the declaration


# Readers of a dismissal recorded elsewhere than the cookie (the signed-in holder's account).
_records: dict[str, Callable[[HttpRequest], int]] = {}


def register_dismissal_record(name: str, read: Callable[[HttpRequest], int]) -> None:
    """Called once at start-up by an app that records dismissals (the accounts app)."""
    _records[name] = read


def _cookie_number(request: HttpRequest) -> int:
    raw = request.COOKIES.get(COOKIE_NAME)
    if not raw:
        return 0
    try:
        value = signing.TimestampSigner(salt=SALT).unsign(raw, max_age=MAX_AGE)
    except signing.BadSignature:
        return 0
    return int(value) if value.isdigit() else 0


def dismissed_number(request: HttpRequest) -> int:
    """The number of the latest version whose notice this browser, or the account signed in on it,
    dismissed (0: none)."""
    return max([_cookie_number(request), *(read(request) for read in _records.values())])


def notice_for(request: HttpRequest) -> PolicyVersion | None:
    """The material version this visitor has not dismissed yet, if any."""
    version = material_notice()
    if version is None or dismissed_number(request) >= version.number:
        return None
    return version


def set_dismissed_cookie(response: HttpResponse, version: PolicyVersion) -> None:
    response.set_cookie(
        COOKIE_NAME,
        signing.TimestampSigner(salt=SALT).sign(str(version.number)),
        max_age=MAX_AGE,
        secure=settings.CSRF_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def cache_key(request: HttpRequest) -> str:
    """What a stored public page depends on for the notice: the version it shows, or nothing."""
    version = notice_for(request)
    return str(version.number) if version is not None else ""
