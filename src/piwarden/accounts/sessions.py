"""Visitor sessions, apart from staff sessions by construction.

Staff sign in through Django's auth (``auth.User``, the ``sessionid`` cookie, the console's TOTP
step).  A visitor signs in through this module: the cookie ``piwarden_account`` holds 32 random
bytes; the table :class:`~piwarden.accounts.models.AccountSession` holds only their SHA-256, the
account, and the times.  The two never meet:

* no visitor code writes Django's session or ``request.user``, so a visitor is always
  ``AnonymousUser`` to the staff console and its permission checks;
* no staff code reads ``piwarden_account``; an ``auth.User`` is never an ``Account`` (different
  tables, different primary-key types);
* the cookie is ``HttpOnly``, ``SameSite=Strict``, ``Secure`` under HTTPS, and lives only while the
  browser is open; the session ends after 30 minutes idle or 12 hours, and at sign-out, password
  change, reset and cancellation every session of the account ends.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from piwarden.accounts.models import SESSION_IDLE, SESSION_MAX, AccountSession

COOKIE = "piwarden_account"
TOUCH_EVERY_SECONDS = 60  # last_seen_at is written at most once a minute per session


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def current(request: HttpRequest, *, second_factor: bool = False) -> AccountSession | None:
    """The visitor's live session (fully signed in; with ``second_factor``, the half-signed-in one
    waiting for its authenticator code), or None.  Memoised on the request."""
    attribute = "_account_session_pending" if second_factor else "_account_session"
    if hasattr(request, attribute):
        return getattr(request, attribute)  # type: ignore[no-any-return]
    found = None
    token = request.COOKIES.get(COOKIE, "")
    if 20 <= len(token) <= 100 and token.isascii():  # noqa: PLR2004  # the shape new_token() makes
        now = timezone.now()
        session = (
            AccountSession.objects.select_related("account__person")  # the Person: every signed-in page asks
            .filter(digest=digest(token), expires_at__gt=now, last_seen_at__gt=now - SESSION_IDLE)
            .first()
        )
        if session is not None and session.second_factor_pending == second_factor:
            if (now - session.last_seen_at).total_seconds() > TOUCH_EVERY_SECONDS:
                AccountSession.objects.filter(pk=session.pk).update(last_seen_at=now)
            found = session
    setattr(request, attribute, found)
    return found


def dismissed_notice(request: HttpRequest) -> int:
    """The policy-change notice the signed-in holder closed (its version's number; 0: none or nobody
    signed in): registered with :mod:`piwarden.policy.notice` by :class:`~piwarden.accounts.apps.AccountsConfig`."""
    session = current(request)
    return session.account.notice_dismissed if session is not None else 0


def session_expiry(now: datetime.datetime) -> datetime.datetime:
    return now + SESSION_MAX


def set_cookie(response: HttpResponse, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
        path="/",
    )


def clear_cookie(response: HttpResponse) -> None:
    response.delete_cookie(COOKIE, path="/", samesite="Strict")
