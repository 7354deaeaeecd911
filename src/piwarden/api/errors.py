"""The API's one error shape: ``{"error": code, "message": text, "fields": {...}}``.

``message`` is in the request's language (``Accept-Language``: zh-hans by default, or en), as
the site's pages are; ``error`` is a stable code a program can test; ``fields`` names, for bad
input, what is wrong with each field (the same messages the portal's form shows).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Field, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from piwarden.rights.actions import CodeOutcome
from piwarden.rights.forms import code_refusal, too_many_codes_message
from piwarden.security.actions import Refused
from piwarden.security.models import EXPLAINED, REFERENCE_LENGTH, Rule

NO_STORE = "no-store"  # answers name requests and carry tokens: no cache keeps them
CONTENT_TYPE = "application/json; charset=utf-8"  # ninja's


class Error(Schema):
    error: str
    message: str
    fields: dict[str, list[str]] = {}
    reference: str | None = Field(
        None,
        description="With rate_limited and refused: the refusal's reference, to cite when asking a person to review "
        "it at /security/review/ (/en/security/review/ in English).",
        json_schema_extra={"minLength": REFERENCE_LENGTH, "maxLength": REFERENCE_LENGTH},
    )


class ApiError(Exception):
    """An answer other than success, raised by an operation and rendered by :func:`render`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
        reference: str | None = None,
    ) -> None:
        super().__init__(code)  # the code only: a message may quote what was sent
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}
        self.retry_after, self.reference = retry_after, reference


def render(request: HttpRequest, exc: ApiError) -> HttpResponse:
    """The error as JSON (as ninja renders an answer), never cached; ``request`` for the handlers' signature."""
    body: dict[str, object] = {"error": exc.code, "message": exc.message, "fields": exc.fields}
    if exc.reference is not None:
        body["reference"] = exc.reference
    response = HttpResponse(json.dumps(body), status=exc.status, content_type=CONTENT_TYPE)
    response["Cache-Control"] = NO_STORE
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def invalid(fields: dict[str, list[str]]) -> ApiError:
    return ApiError(400, "invalid", _("Some fields are not valid; each is explained under fields."), fields=fields)


def not_found() -> ApiError:
    # One answer for a reference that does not exist, a token for another request, a forged or
    # expired token and an erased request: nothing tells them apart.
    return ApiError(
        404,
        "not_found",
        _(
            "Nothing to show for this reference with this token. A token opens one request for 30 minutes: "
            "ask for a code again to get a new one."
        ),
    )


def unauthorised() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        _("This needs the token you received with the code: send it as Authorization: Bearer <token>."),
    )


def malformed() -> ApiError:
    return ApiError(
        400,
        "malformed",
        _("The request is not the JSON this operation takes; its description is at /api/openapi.json."),
    )


def closed() -> ApiError:
    return ApiError(
        410,
        "closed",
        _(
            "This website ceased operation on its announced date and takes no new requests; the personal "
            "information it held has been deleted or anonymised. Call or e-mail us with any question."
        ),
    )


def refused(refusal: Refused) -> ApiError:
    """A refusal by a risk rule, as the refusal page says it: what happened, when to try again, and
    the reference to cite when asking a person to review it (PIPL 24).  ``rate_limited`` for a rate
    limit, ``refused`` for the block of a client that sent too many forms today."""
    rule = Rule(refusal.rule)
    minutes = max(1, (refusal.retry_after + 59) // 60)
    what_to_do = _(
        "Please try again in %(minutes)d minutes (Retry-After says how many seconds). If you think this is a "
        "mistake, ask for a person to review it at %(review)s with the reference %(reference)s."
    ) % {"minutes": minutes, "review": reverse("site:security_review"), "reference": refusal.reference}
    return ApiError(
        429,
        "rate_limited" if rule is Rule.RATE_LIMIT else "refused",
        f"{EXPLAINED[rule]} {what_to_do}",
        retry_after=refusal.retry_after,
        reference=refusal.reference,
    )


def too_many_codes(retry_after: int) -> ApiError:
    return ApiError(429, "too_many_codes", too_many_codes_message(), retry_after=retry_after)


def code_refused(outcome: CodeOutcome) -> ApiError:
    """The portal's message for a code that did not open the request."""
    return ApiError(400, f"code_{outcome}", code_refusal(outcome))


def handle(request: HttpRequest, exc: Exception | type[Exception]) -> HttpResponse:
    """Our errors, and ninja's own refusals (a body that is not the schema's JSON, no bearer token) in our shape."""
    if isinstance(exc, ApiError):
        return render(request, exc)
    if isinstance(exc, AuthenticationError):
        return render(request, unauthorised())
    return render(request, malformed())  # a pydantic ValidationError, or a body that is not JSON (HttpError)


HANDLED = (ApiError, AuthenticationError, HttpError, NinjaValidationError)
