"""The bearer token a right code gives: one request, 30 minutes, signed, held by the client only.

``<request id>:<reference>`` signed with a timestamp (``django.core.signing.TimestampSigner``
under the site's secret key and a salt of its own): nothing is stored, so nothing is looked up to
refuse a token that is forged, expired or for another request, and a cookie is never involved.
The reference in the token lets a request for another reference be refused before any read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core import signing

from piwarden.rights.models import RightsRequest

TOKEN_SECONDS = 30 * 60
SALT = "piwarden.api.rights.token"


@dataclass(frozen=True)
class Opened:
    request_id: uuid.UUID
    reference: str


def issue(request: RightsRequest) -> str:
    return signing.TimestampSigner(salt=SALT).sign(f"{request.pk}:{request.reference}")


def opened_by(token: str, *, max_age: int = TOKEN_SECONDS) -> Opened | None:
    """The request a token opens, or None if it is not one of ours or is older than 30 minutes."""
    try:
        value = signing.TimestampSigner(salt=SALT).unsign(token, max_age=max_age)
        request_id, reference = value.split(":", 1)
        return Opened(uuid.UUID(request_id), reference)
    except (signing.BadSignature, ValueError):
        return None
