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

from piwarden.ratelimit.actions import record_refusal
from piwarden.ratelimit.limiter import Limit, client_address, hit_key, window_of
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


def _count(scope: str, key: str, rate_setting: str) -> Limit:
    rate = getattr(settings, rate_setting)
    limit = hit_key(scope, key, rate)
    if _first(limit, rate):
        record_refusal(scope)  # once per key and window, as the decorator does
    return limit


def _first(limit: Limit, rate: str) -> bool:
    return limit.limited and limit.count == window_of(rate)[0] + 1


def sign_in(request: HttpRequest, email: str) -> Throttle:
    """Count one sign-in attempt; what may happen next."""
    client = client_address(request)
    account = normalise_email(email)
    by_client = _count("account_sign_in_client", client, "PIWARDEN_SIGN_IN_RATE")
    pair = _count("account_sign_in_pair", f"{account}|{client}", "PIWARDEN_SIGN_IN_PAIR_RATE")
    by_account = _count("account_sign_in_account", account, "PIWARDEN_SIGN_IN_ACCOUNT_RATE")
    if by_client.limited or pair.limited:
        first = _first(pair, settings.PIWARDEN_SIGN_IN_PAIR_RATE) or _first(by_client, settings.PIWARDEN_SIGN_IN_RATE)
        retry = max(by_client.retry_after if by_client.limited else 0, pair.retry_after if pair.limited else 0)
        return Throttle(Verdict.REFUSED, retry, first)
    if by_account.limited:
        return Throttle(Verdict.CAPTCHA, first=_first(by_account, settings.PIWARDEN_SIGN_IN_ACCOUNT_RATE))
    return Throttle(Verdict.GO)


def code(request: HttpRequest, session_id: str) -> Throttle:
    """Count one authenticator code typed for a half-signed-in session (5 per sign-in window)."""
    limit = _count("account_code", session_id, "PIWARDEN_SIGN_IN_PAIR_RATE")
    return Throttle(Verdict.REFUSED, limit.retry_after) if limit.limited else Throttle(Verdict.GO)


def mail(request: HttpRequest, email: str) -> bool:
    """Count one e-mail asked for (sign-up, reset) per client and per address; True when over."""
    client = _count("account_mail_client", client_address(request), "PIWARDEN_ACCOUNT_MAIL_RATE")
    address = _count("account_mail_address", normalise_email(email), "PIWARDEN_ACCOUNT_MAIL_RATE")
    return client.limited or address.limited
