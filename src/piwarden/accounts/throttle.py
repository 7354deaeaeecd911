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

from piwarden.ratelimit.limiter import client_address
from piwarden.ratelimit.refusals import count_and_refuse
from piwarden.security.actions import Refused
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


def sign_in(request: HttpRequest, email: str) -> Throttle:
    """Count one sign-in attempt; what may happen next."""
    client = client_address(request)
    account = normalise_email(email)
    by_client = count_and_refuse(request, "account_sign_in_client", client, settings.PIWARDEN_SIGN_IN_RATE)
    pair = count_and_refuse(request, "account_sign_in_pair", f"{account}|{client}", settings.PIWARDEN_SIGN_IN_PAIR_RATE)
    by_account = count_and_refuse(request, "account_sign_in_account", account, settings.PIWARDEN_SIGN_IN_ACCOUNT_RATE)
    if by_client.refused or pair.refused:
        first = pair.first or by_client.first
        retry = max(
            by_client.limit.retry_after if by_client.refused else 0, pair.limit.retry_after if pair.refused else 0
        )
        return Throttle(Verdict.REFUSED, retry, first, pair.refused or by_client.refused)
    if by_account.refused:
        return Throttle(Verdict.CAPTCHA, first=by_account.first, refused=by_account.refused)
    return Throttle(Verdict.GO)


def code(request: HttpRequest, session_id: str) -> Throttle:
    """Count one authenticator code typed for a half-signed-in session (5 per sign-in window)."""
    counted = count_and_refuse(request, "account_code", session_id, settings.PIWARDEN_SIGN_IN_PAIR_RATE)
    if counted.refused:
        return Throttle(Verdict.REFUSED, counted.limit.retry_after, refused=counted.refused)
    return Throttle(Verdict.GO)


def mail(request: HttpRequest, email: str) -> Refused | None:
    """Count one e-mail asked for (sign-up, reset) per client and per address; the refusal when over."""
    rate = settings.PIWARDEN_ACCOUNT_MAIL_RATE
    client = count_and_refuse(request, "account_mail_client", client_address(request), rate)
    address = count_and_refuse(request, "account_mail_address", normalise_email(email), rate)
    return client.refused or address.refused
