"""TOTP for visitors: django-otp's ``TOTP`` (RFC 6238: 6 digits, 30 s, SHA-1), as the staff's
authenticator uses it, with its rule against replay (only a time step later than the last
accepted one passes)."""

from __future__ import annotations

import re
import time
from base64 import b32encode
from urllib.parse import quote, urlencode

from django.conf import settings
from django_otp.oath import TOTP

STEP = 30
DIGITS = 6
TOLERANCE = 1  # the previous, current and next code: phone clocks drift
_CODE = re.compile(r"[0-9]{6}")


def verify_code(secret: str | None, code: str, *, after: int) -> int | None:
    """The time step ``code`` belongs to, if it is right and later than ``after``; else None."""
    code = code.strip().replace(" ", "")
    if secret is None or not _CODE.fullmatch(code):
        return None
    totp = TOTP(bytes.fromhex(secret), STEP, 0, DIGITS, 0)
    totp.time = time.time()
    if not totp.verify(int(code), TOLERANCE, after + 1):
        return None
    return int(totp.t())


def config_url(secret: str, label: str) -> str:
    """The otpauth:// link an authenticator app scans (Google's Key Uri Format)."""
    issuer = settings.OTP_TOTP_ISSUER.replace(":", "")
    params = {
        "secret": b32encode(bytes.fromhex(secret)).decode("ascii").rstrip("="),
        "algorithm": "SHA1",
        "digits": DIGITS,
        "period": STEP,
        "issuer": issuer,
    }
    return f"otpauth://totp/{quote(f'{issuer}:{label}')}?{urlencode(params, quote_via=quote)}"


def secret_text(secret: str) -> str:
    """The secret as people type it into an app: base32 in groups of four."""
    key = b32encode(bytes.fromhex(secret)).decode("ascii").rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))
