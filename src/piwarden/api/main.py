"""The JSON API (DESIGN: the third thin interface, beside ``site`` and ``backoffice``).

Each operation validates its input with the same form the portal's page uses, calls the same
write path or read as the page, and renders the result: no rule of its own.  Served under
``/api/``, its OpenAPI schema at ``/api/openapi.json`` (the reference); no docs page, since
ninja's loads its script from a CDN and the site loads nothing from another origin.

No cookies either way: a client proves it may read a request with a bearer token
(``api.tokens``), never a session or a CSRF cookie, so the API is exempt from CSRF (ninja marks
its views so) and no answer sets one.  Every operation's answer carries ``Cache-Control: no-store``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation.trans_real import parse_accept_lang_header
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI

from piwarden.api import errors
from piwarden.api.rights import router as rights_router

DESCRIPTION = """\
The rights of policy §六 (PIPL Arts 44-50) for programs: ask, confirm with the e-mailed code,
follow. The same requests, checks and limits as the pages under /rights/.

1. `POST /api/rights/requests` sends a 6-digit code to the address given (202; the answer is
   the same whether or not the address is known to us) and gives the request's reference.
2. `POST /api/rights/requests/{reference}/verify` with that code: the request is received; the
   answer holds the due date (15 PRC working days) and a bearer token.
3. Later: `POST .../follow-code` with the e-mail address sends a new code (202, the same answer
   whether or not they belong together), `POST .../open` with it gives a token.
4. `GET /api/rights/requests/{reference}` with `Authorization: Bearer <token>`: status, steps
   and due date. A token opens that one request for 30 minutes; any other request, and a
   token that is forged or expired, answers 404. A completed access or copy request has an
   `archive`: while it is `ready`, `GET .../archive` with the same token downloads the zip (for
   5 days; each download is recorded).

Errors are `{"error": code, "message": text, "fields": {...}}`, the message in the language of
`Accept-Language` (zh-hans by default, or en). Codes: `invalid` (400, `fields` says what, with
the messages of the form on /rights/), `malformed` (400, not this operation's JSON),
`code_wrong`, `code_expired`, `code_used`, `code_exhausted` (400), `unauthorized` (401, no
bearer token), `not_found` (404), `rate_limited`, `refused` and `too_many_codes` (429).

Rate limits and risk rules: the pages' limits per network address (and per e-mail address for
codes sent), counted together with the pages, plus, since the API has no CAPTCHA, a stricter one
of its own per network address for every POST (PIWARDEN_API_RATE, 30 an hour by default). A new
request counts in the pages' daily count of forms sent per network address: past it (30 by
default), new requests from that network are refused until the day ends. Over a limit: 429 with
Retry-After; `rate_limited` and `refused` also give the refusal's `reference`, to cite when asking
a person to review it at /security/review/ (/en/security/review/ in English).

Each new request records, as the pages do, the device and software information it came with
(network address, user agent, a device signature; policy §1(I)1.2), kept 184 days for security.
"""


class Api(NinjaAPI):
    def create_response(
        self,
        request: HttpRequest,
        data: Any,
        *,
        status: int | None = None,
        temporal_response: HttpResponse | None = None,
    ) -> HttpResponse:
        response = super().create_response(request, data, status=status, temporal_response=temporal_response)
        response["Cache-Control"] = errors.NO_STORE
        return response


def accepted_language(request: HttpRequest) -> str:
    """The first language of ``Accept-Language`` the site speaks, else zh-hans.

    Not LocaleMiddleware's choice: with the default language unprefixed (``/`` Chinese, ``/en/``
    English), it gives every path outside ``/en/`` the default language.  Not the language
    cookie either: the API takes no cookies.
    """
    for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


def in_request_language(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Runs an operation, its checks and its errors included, in :func:`accepted_language`."""

    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        language = accepted_language(request)
        request.LANGUAGE_CODE = language
        with translation.override(language):
            response = run(request, *args, **kwargs)
        response["Content-Language"] = language
        return response

    return wrapper


api = Api(
    title="piwarden",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    docs_url=None,  # ninja's docs page loads Swagger UI from a CDN
)
api.add_decorator(in_request_language, mode="view")  # before ninja's own checks: their errors too
api.add_router("/rights/", rights_router)
for _kind in errors.HANDLED:
    api.add_exception_handler(_kind, errors.handle)


@csrf_exempt
def no_such_operation(request: HttpRequest, rest: str) -> HttpResponse:
    """Any other path under /api/: a JSON 404 in the request's language, not the site's HTML page."""
    return in_request_language(_no_such_operation)(request)


def _no_such_operation(request: HttpRequest) -> HttpResponse:
    message = _("There is no such operation; the operations are listed at /api/openapi.json.")
    return errors.render(request, errors.ApiError(404, "no_such_operation", message))
