"""Brute-force limits on visitor sign-in, decided BEFORE any password hash is computed.

Built on :mod:`piwarden.ratelimit` (one autocommit upsert per counter, counters keyed by a blind
index, pseudonymous, deleted after a day), not django-axes: axes is tied to ``auth.User`` and
``authenticate()`` (the staff's), keeps clear-text addresses and user names in its tables, and only
knows how to lock out, where the real owner must still get in during an attack.

Three counters per attempt, keyed by the normalised e-mail address typed (whether or not an
account has it, so the answers cannot tell known and unknown addresses apart) and the client's
address (IPv4, or the IPv6 /64):

* per client (``PIWARDEN_SIGN_IN_RATE``): one client trying many accounts (credential stuffing)
  is refused, 429;
* per (account, client) (``PIWARDEN_SIGN_IN_PAIR_RATE``): one client guessing one account is
  refused, 429;
* per account, over every client (``PIWARDEN_SIGN_IN_ACCOUNT_RATE``): a distributed guess at one
  account makes every further attempt on it need the CAPTCHA, but is never a block: the owner,
  from their own browser (whose own pair counter is low), solves the picture and signs in.

A refused or CAPTCHA-less attempt costs these three statements and no hash; a bench
(``bench/account_sign_in.py``) shows it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

from piwarden.ratelimit.limiter import Limit, bucket_for, client_address, hit_key, window_of
from piwarden.security.actions import Refused, refusal_for
from piwarden.security.models import Rule
from piwarden.vault.blind import normalise_email


class Verdict(enum.Enum):
    GO = "go"
    CAPTCHA = "captcha"
    REFUSED = "refused"


@dataclass(frozen=True)
class Throttle:
    verdict: Verdict
    retry_after: int = 0
    first: bool = False  # the first refusal of a counter in its window: the one written to the login log
    refused: Refused | None = None  # what the refusal page cites (piwarden.security): a reference for review


@dataclass(frozen=True)
class Counted:
    limit: Limit
    refused: Refused | None  # over the rate: the refusal recorded for this counter's window


def _count(request: HttpRequest, scope: str, key: str, rate_setting: str) -> Counted:
    """Count one attempt; over the rate, the refusal the person can cite (the first of a window is
    recorded as the decorator records it: a security event, the refusal, an audit event)."""
    rate = getattr(settings, rate_setting)
    limit = hit_key(scope, key, rate)
    if not limit.limited:
        return Counted(limit, None)
    most, seconds = window_of(rate)
    refused = refusal_for(
        request,
        rule=Rule.RATE_LIMIT,
        scope=scope,
        client=bucket_for(scope, key),
        window_start=limit.window_start,
        detail={"count": limit.count, "limit": most, "window_seconds": seconds},
        retry_after=limit.retry_after,
        first=_first(limit, rate),
    )
    return Counted(limit, refused)


def _first(limit: Limit, rate: str) -> bool:
    return limit.limited and limit.count == window_of(rate)[0] + 1


def sign_in(request: HttpRequest, email: str) -> Throttle:
    """Count one sign-in attempt; what may happen next."""
    client = client_address(request)
    account = normalise_email(email)
    by_client = _count(request, "account_sign_in_client", client, "PIWARDEN_SIGN_IN_RATE")
    pair = _count(request, "account_sign_in_pair", f"{account}|{client}", "PIWARDEN_SIGN_IN_PAIR_RATE")
    by_account = _count(request, "account_sign_in_account", account, "PIWARDEN_SIGN_IN_ACCOUNT_RATE")
    if by_client.refused or pair.refused:
        first = _first(pair.limit, settings.PIWARDEN_SIGN_IN_PAIR_RATE) or _first(
            by_client.limit, settings.PIWARDEN_SIGN_IN_RATE
        )
        retry = max(
            by_client.limit.retry_after if by_client.refused else 0, pair.limit.retry_after if pair.refused else 0
        )
        return Throttle(Verdict.REFUSED, retry, first, pair.refused or by_client.refused)
    if by_account.refused:
        first = _first(by_account.limit, settings.PIWARDEN_SIGN_IN_ACCOUNT_RATE)
        return Throttle(Verdict.CAPTCHA, first=first, refused=by_account.refused)
    return Throttle(Verdict.GO)


def code(request: HttpRequest, session_id: str) -> Throttle:
    """Count one authenticator code typed for a half-signed-in session (5 per sign-in window)."""
    counted = _count(request, "account_code", session_id, "PIWARDEN_SIGN_IN_PAIR_RATE")
    if counted.refused:
        return Throttle(Verdict.REFUSED, counted.limit.retry_after, refused=counted.refused)
    return Throttle(Verdict.GO)


def mail(request: HttpRequest, email: str) -> Refused | None:
    """Count one e-mail asked for (sign-up, reset) per client and per address; the refusal when over."""
    client = _count(request, "account_mail_client", client_address(request), "PIWARDEN_ACCOUNT_MAIL_RATE")
    address = _count(request, "account_mail_address", normalise_email(email), "PIWARDEN_ACCOUNT_MAIL_RATE")
    return client.refused or address.refused
