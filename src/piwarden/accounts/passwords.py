"""Visitor passwords as NIST SP 800-63B rev 4 (§3.1.1.2) asks.

* at least 15 characters when the password is the only factor, at least 8 with a TOTP
  authenticator confirmed (multi-factor);
* up to :data:`MAX_LENGTH` (256) characters, so 64 and more are allowed; never truncated (Django's
  Argon2 hasher hashes the whole string; a 300-character password is refused, not cut);
* no composition rules (no "one digit, one symbol"): any Unicode character, spaces too;
* checked against a list of common passwords (Django's ``CommonPasswordValidator``: 20 000
  passwords from leaked sets) and against the account's own e-mail address;
* stored as Argon2id (Django's ``Argon2PasswordHasher``, argon2-cffi, ``Type.ID``).

Length is counted in Unicode code points after NFC normalisation, as 800-63B recommends, and the
password is hashed in that form, so the same password typed on two keyboards signs in.

:func:`strength` is the feedback shown beside the field: a rough guess of the guesses needed
(length times the size of the alphabet it uses), never a rule.  The page shows it after submit
without JavaScript, and ``accounts/password.js`` shows the length and the same verdict as they type.
"""

from __future__ import annotations

import functools
import math
import unicodedata

from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

MIN_LENGTH = 15
MIN_LENGTH_WITH_MFA = 8
MAX_LENGTH = 256
HASHER = "argon2"

STRENGTH_LABELS = {
    "weak": gettext_lazy("Weak: a longer password, such as a few unrelated words, is much harder to guess."),
    "fair": gettext_lazy("Fair: adding a few more words or characters makes it much stronger."),
    "strong": gettext_lazy("Strong."),
}


def normalised(password: str) -> str:
    return unicodedata.normalize("NFC", password)


@functools.cache
def _common() -> frozenset[str]:
    return frozenset(CommonPasswordValidator().passwords)


def problems(password: str, *, email: str = "", with_mfa: bool = False) -> list[str]:
    """What is wrong with ``password``, in the active language (empty: acceptable)."""
    value = normalised(password)
    minimum = MIN_LENGTH_WITH_MFA if with_mfa else MIN_LENGTH
    found = []
    if len(value) < minimum:
        found.append(
            _("Use at least %(minimum)d characters (you typed %(length)d). A few unrelated words are easy to remember.")
            % {"minimum": minimum, "length": len(value)}
        )
    if len(value) > MAX_LENGTH:
        found.append(_("Use at most %(maximum)d characters.") % {"maximum": MAX_LENGTH})
    if value.lower().strip() in _common():
        found.append(_("This password is on a list of commonly used passwords. Choose another one."))
    if email and value.strip().lower() == email.strip().lower():
        found.append(_("Do not use your e-mail address as your password."))
    return found


def validate(password: str, *, email: str = "", with_mfa: bool = False) -> str:
    """The password as it will be hashed, or ``ValidationError`` with every problem."""
    found = problems(password, email=email, with_mfa=with_mfa)
    if found:
        raise ValidationError(found)
    return normalised(password)


def strength(password: str) -> str:
    """``weak``, ``fair`` or ``strong``: log2 of (alphabet size ** length), a rough guide only."""
    value = normalised(password)
    if not value:
        return "weak"
    pool = 0
    if any(c.islower() for c in value):
        pool += 26
    if any(c.isupper() for c in value):
        pool += 26
    if any(c.isdigit() for c in value):
        pool += 10
    if any(not c.isalnum() and c.isascii() for c in value):
        pool += 33
    if any(not c.isascii() for c in value):
        pool += 1000  # CJK and other scripts: far larger alphabets
    bits = len(value) * math.log2(max(pool, 2))
    if value.lower() in _common() or bits < 60:  # noqa: PLR2004  # rough bands, not rules
        return "weak"
    return "fair" if bits < 90 else "strong"  # noqa: PLR2004


def hash_password(password: str) -> str:
    """Argon2id of the normalised password (run outside any transaction: ~0.1 s of CPU)."""
    return make_password(normalised(password), hasher=HASHER)


def verify_password(password: str, encoded: str) -> bool:
    return check_password(normalised(password), encoded)


@functools.cache
def _dummy_hash() -> str:
    return make_password("not a password of anyone's: equal work for unknown addresses", hasher=HASHER)


def verify_nobody(password: str) -> bool:
    """The same work as :func:`verify_password` for an address with no account; always False."""
    check_password(normalised(password), _dummy_hash())
    return False
