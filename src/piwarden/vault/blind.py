"""Blind indexes: find a person by e-mail or phone without decrypting anything.

A blind index is HMAC-SHA256 (Tink PRF) over a *normalised* value, with the
kind of value as a domain separator, so the same string as an e-mail and as a
phone number gives unrelated digests.  Without the PRF key (kept with the
KEK, never in the database) the digests reveal nothing testable offline.
"""

from __future__ import annotations

import unicodedata

import phonenumbers

from piwarden.vault.keys import get_provider

DIGEST_BYTES = 32


def normalise_email(value: str) -> str:
    """Case-fold the whole address; NFKC so full-width characters match their ASCII forms."""
    return unicodedata.normalize("NFKC", value).strip().lower()


class InvalidPhoneNumber(ValueError):
    """Not a number that can be dialled (unparseable, or no such number plan)."""


class E164(str):
    """A phone number as :func:`normalise_phone` returned it: valid, in E.164 (it makes no other)."""

    __slots__ = ()


def normalise_phone(value: str, default_region: str = "CN") -> E164:
    """E.164, e.g. ``+8613800138000``; raises :class:`InvalidPhoneNumber` for anything else.

    Validation lives here, with the normalisation, so that a form checks and
    normalises a number with one parse, and no invalid number is ever indexed.
    A value this function returned is returned as it is (the form's number is
    not parsed again for its blind index: ~30 µs a parse).
    """
    if isinstance(value, E164):
        return value
    try:
        number = phonenumbers.parse(unicodedata.normalize("NFKC", value), default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber(value) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(value)
    return E164(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def blind_index(kind: str, normalised: str) -> str:
    """Hex digest of ``kind`` and an already-normalised value."""
    message = kind.encode("ascii") + b"\x00" + normalised.encode("utf-8")
    digest: bytes = get_provider().blind_prf().compute(message, DIGEST_BYTES)
    return digest.hex()


def email_index(value: str) -> str:
    return blind_index("email", normalise_email(value))


def phone_index(value: str) -> str:
    return blind_index("phone", normalise_phone(value))
