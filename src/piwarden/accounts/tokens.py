"""The links e-mailed to an account holder: confirm the address, reset the password.

Stateless signed tokens (Django's ``TimestampSigner`` under the site's secret key, one salt per
use) naming the account and a fingerprint of the state they change, so each link works once:

* confirming the e-mail: the account id, its state and a digest of the address's look-up index (a
  confirmed account's link no longer matches, confirming twice changes nothing anyway, and a link
  mailed to an address that a correction has since replaced confirms nothing); valid 3 days;
* resetting the password: the account id and a digest of the current password hash, so the link
  dies as soon as the password changes (by this link or otherwise); valid 1 hour.

Nothing of the token is stored: a copy of the database gives no link that works.
"""

from __future__ import annotations

import hashlib
import uuid

from django.core import signing

from piwarden.accounts.models import Account

VERIFY_SECONDS = 3 * 24 * 3600
RESET_SECONDS = 3600
_VERIFY = "piwarden.accounts.verify"
_RESET = "piwarden.accounts.reset"


def _password_fingerprint(account: Account) -> str:
    return hashlib.sha256(account.password.encode()).hexdigest()[:16]


def _verify_fingerprint(account: Account) -> str:
    return f"{account.state}:{hashlib.sha256(str(account.email_index).encode()).hexdigest()[:16]}"


def verify_token(account: Account) -> str:
    return signing.TimestampSigner(salt=_VERIFY).sign(f"{account.pk}:{_verify_fingerprint(account)}")


def reset_token(account: Account) -> str:
    return signing.TimestampSigner(salt=_RESET).sign(f"{account.pk}:{_password_fingerprint(account)}")


def _opened(token: str, salt: str, max_age: int) -> tuple[uuid.UUID, str] | None:
    try:
        value = signing.TimestampSigner(salt=salt).unsign(token, max_age=max_age)
        pk, fingerprint = value.split(":", 1)
        return uuid.UUID(pk), fingerprint
    except (signing.BadSignature, ValueError):
        return None


def account_to_verify(token: str) -> Account | None:
    opened = _opened(token, _VERIFY, VERIFY_SECONDS)
    if opened is None:
        return None
    account = Account.objects.filter(pk=opened[0]).first()
    return account if account is not None and _verify_fingerprint(account) == opened[1] else None


def account_to_reset(token: str) -> Account | None:
    opened = _opened(token, _RESET, RESET_SECONDS)
    if opened is None:
        return None
    account = Account.objects.filter(pk=opened[0]).first()
    return account if account is not None and _password_fingerprint(account) == opened[1] else None
