"""The notice of a material change on every page, until the visitor dismisses it (CHG-01).

The latest version that made a material change (:func:`piwarden.policy.versions.material_notice`)
is announced on every public page.  Dismissing it (a plain form, no script) sets the strictly
necessary ``piwarden_notice`` cookie (declared in the cookie declaration): the signed number of the
version dismissed.  A later material version is shown again, whatever was dismissed before.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

from piwarden.policy.models import PolicyVersion
from piwarden.policy.versions import material_notice

COOKIE_NAME = "piwarden_notice"
SALT = "piwarden.policy.notice"
MAX_AGE = int(datetime.timedelta(days=365).total_seconds())  # "1 year" in the declaration


def dismissed_number(request: HttpRequest) -> int:
    """The number of the latest version whose notice this browser dismissed (0: none)."""
    raw = request.COOKIES.get(COOKIE_NAME)
    if not raw:
        return 0
    try:
        value = signing.TimestampSigner(salt=SALT).unsign(raw, max_age=MAX_AGE)
    except signing.BadSignature:
        return 0
    return int(value) if value.isdigit() else 0


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
