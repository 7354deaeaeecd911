"""The API's one error shape: ``{"error": code, "message": text, "fields": {...}}``.

``message`` is in the request's language (``Accept-Language``: zh-hans by default, or en), as
the site's pages are; ``error`` is a stable code a program can test; ``fields`` names, for bad
input, what is wrong with each field (the same messages the portal's form shows).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from piwarden.rights.actions import CodeOutcome
from piwarden.rights.forms import code_refusal, too_many_codes_message

NO_STORE = "no-store"  # answers name requests and carry tokens: no cache keeps them
CONTENT_TYPE = "application/json; charset=utf-8"  # ninja's


class Error(Schema):
    error: str
    message: str
    fields: dict[str, list[str]] = {}


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
    ) -> None:
        super().__init__(code)  # the code only: a message may quote what was sent
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}
        self.retry_after = retry_after


def render(request: HttpRequest, exc: ApiError) -> HttpResponse:
    """The error as JSON (as ninja renders an answer), never cached; ``request`` for the handlers' signature."""
    body = {"error": exc.code, "message": exc.message, "fields": exc.fields}
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


def rate_limited(reference: str) -> ApiError:
    message = _(
        "Too many requests from your network. Please wait and try again; Retry-After says how many seconds. "
        "If you think this is a mistake, ask for a person to review it at /en/security/review/ with the "
        "reference %(reference)s."
    ) % {"reference": reference}
    return ApiError(429, "rate_limited", message)


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
