"""One-time codes: made, digested and compared, nothing stored here.

A code is 6 random digits.  Its digest is the blind-index PRF (HMAC-SHA256 under the vault's PRF
key, which never enters the database) over the request's id, the code's purpose and the code:
the same digits for another request or purpose digest differently, and a copy of the database
cannot be searched for the million possible codes without the key.
"""

from __future__ import annotations

import hmac
import secrets
import uuid

from piwarden.rights.models import CODE_DIGITS
from piwarden.vault.blind import blind_index


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def normalise_code(typed: str) -> str:
    """What a person types, as a code: spaces and dashes dropped, full-width digits made ASCII."""
    digits = "".join(c for c in typed if not c.isspace() and c != "-")
    return "".join(str(int(c)) if c.isdigit() else c for c in digits)


def code_digest(request_id: uuid.UUID, purpose: str, code: str) -> str:
    return blind_index("rights-code", f"{request_id}|{purpose}|{code}")


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))
