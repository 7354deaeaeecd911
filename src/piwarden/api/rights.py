"""``/api/rights/``: a rights request asked, confirmed and followed, as the portal's pages do.

Each operation: the rate limits, the portal's form (``rights.forms``) on the JSON it was given,
the write path or read the page calls (``rights.actions``, ``rights.access``), and the answer.
Not ``from __future__ import annotations``: ninja reads these signatures' types at import.
"""

import datetime
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status
from ninja.params.functions import Path
from ninja.security import HttpBearer

from piwarden.api import errors, tokens
from piwarden.cessation.state import rights_open
from piwarden.ratelimit.decorators import rate_limit
from piwarden.ratelimit.limiter import hit_key
from piwarden.rights.access import RequestStatusView, read_status
from piwarden.rights.actions import CodeCheck, normalise_reference, open_status, send_follow_code, submit_request
from piwarden.rights.actions import verify_request as verify_code
from piwarden.rights.archive import ArchiveUnavailable, open_request_archive, request_archive
from piwarden.rights.forms import DETAILS_MAX, CodeForm, FollowForm, RightsRequestForm
from piwarden.rights.models import CODE_DIGITS, CODE_LIFETIME, REFERENCE_LENGTH, ActingAs, RequestKind, RequestStatus
from piwarden.security.actions import Refused, recording
from piwarden.security.models import EventKind
from piwarden.security.risk import assess_submission

router = Router(tags=["rights"])

ERRORS = {400: errors.Error, 429: errors.Error}
REFERENCE = Path(
    ...,
    description="The request's reference, as in the e-mails (10 letters and digits; dashes and spaces are ignored).",
    max_length=20,
    pattern=r"^[A-Za-z0-9 -]{1,20}$",
)


def _enum(values: list[str], **extra: Any) -> dict[str, Any]:
    return {"enum": values, **extra}


# --- the JSON in and out -----------------------------------------------------------------------


class RequestIn(Schema):
    # Plain strings here, checked by the portal's form: the same rules and the same messages, in
    # the request's language.  The schema lists what is accepted.
    kind: str = Field(json_schema_extra=_enum(RequestKind.values))
    email: str = Field(
        description="The requester's e-mail address: the code goes there.", json_schema_extra={"maxLength": 254}
    )
    details: str = Field(
        "",
        description="Required for correction, withdrawal, complaint, and when acting for someone else.",
        json_schema_extra={"maxLength": DETAILS_MAX},
    )
    acting_as: str = Field(ActingAs.SELF.value, json_schema_extra=_enum(ActingAs.values))
    language: str | None = Field(
        None,
        description="The language of our e-mails and answers about this request; by default Accept-Language's.",
        json_schema_extra=_enum([code for code, _name in settings.LANGUAGES]),
    )


class CodeIn(Schema):
    code: str = Field(
        description=f"The {CODE_DIGITS}-digit one-time code from the e-mail.",
        json_schema_extra={"maxLength": 20, "examples": ["123456"]},
    )


class FollowIn(Schema):
    email: str = Field(
        description="The e-mail address the request was sent with.", json_schema_extra={"maxLength": 254}
    )


class Submitted(Schema):
    reference: str = Field(min_length=REFERENCE_LENGTH, max_length=REFERENCE_LENGTH)
    message: str


class Accepted(Schema):
    message: str


class Opened(Schema):
    reference: str
    status: str = Field(json_schema_extra=_enum(RequestStatus.values))
    received_on: datetime.date | None
    due_on: datetime.date | None = Field(description="The answer is due by this day (PRC working days).")
    provisional: bool = Field(description="The due date counts weekends only: a year's holidays are not known yet.")
    token: str
    token_type: str = Field(json_schema_extra=_enum(["Bearer"]))
    expires_in: int = Field(description="Seconds the token is valid for.")


class StepOut(Schema):
    status: str = Field(json_schema_extra=_enum(RequestStatus.values))
    status_label: str
    at: datetime.datetime
    note: str


ARCHIVE_STATES = ["building", "ready", "failed", "expired"]


class ArchiveOut(Schema):
    state: str = Field(
        description="building: being prepared; ready: download it until expires_at; failed: we are told and will "
        "build it again; expired: ask again for a new one.",
        json_schema_extra=_enum(ARCHIVE_STATES),
    )
    expires_at: datetime.datetime | None = Field(description="The download is refused from this time on.")
    lifetime_days: int = Field(description="Days an archive can be downloaded after it is ready.")
    download: str | None = Field(
        description="While ready: the path to GET, with the same token, for the zip (JSON and CSV, and a readable "
        "page)."
    )


class StatusOut(Schema):
    reference: str
    kind: str = Field(json_schema_extra=_enum(RequestKind.values))
    kind_label: str
    status: str = Field(json_schema_extra=_enum(RequestStatus.values))
    status_label: str
    acting_as: str = Field(json_schema_extra=_enum(ActingAs.values))
    received_on: datetime.date | None
    due_on: datetime.date | None
    provisional: bool
    working_days_left: int | None = Field(description="PRC working days until the due date; null once answered.")
    overdue: bool
    details: str
    extension_reason: str
    outcome: str = Field(description="The result, or the reasons for a refusal.")
    complaint_routes: str = Field(description="Where to complain or sue, when the request was refused (PIPL 50).")
    steps: list[StepOut]
    archive: ArchiveOut | None = Field(
        description="The archive that answers a completed access or copy request; null for other requests."
    )


class Token(HttpBearer):
    """The header's token as given; whether it opens the request is the operation's question (404, not 401)."""

    def authenticate(self, request: HttpRequest, token: str) -> str | None:
        return token or None


# --- limits --------------------------------------------------------------------------------


def _refuse(request: HttpRequest, refused: Refused) -> HttpResponse:
    return errors.render(request, errors.refused(refused))


def _limited(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The portal's limit for this scope (the same counters), then the API's own, stricter one."""
    portal = rate_limit(scope, rate_setting="PIWARDEN_RIGHTS_RATE", refuse=_refuse)
    own = rate_limit("api", rate_setting="PIWARDEN_API_RATE", refuse=_refuse)
    return lambda view: own(portal(view))


def _count_code_mail(email: str) -> None:
    # The portal's counter (site.rights_views): codes mailed to one address, whichever interface asks.
    limit = hit_key("rights_mail", f"email:{email}", settings.PIWARDEN_RIGHTS_MAIL_RATE)
    if limit.limited:
        raise errors.too_many_codes(limit.retry_after)


def _checked(form: forms.Form) -> dict[str, Any]:
    if not form.is_valid():
        raise errors.invalid({name: [str(m) for m in messages] for name, messages in form.errors.items()})
    return form.cleaned_data


# --- the operations ----------------------------------------------------------------------


@router.post("/requests", response={202: Submitted, 410: errors.Error, **ERRORS}, summary="Ask: a code is e-mailed")
@_limited("rights")
def submit(request: HttpRequest, payload: RequestIn) -> Status[dict[str, Any]]:
    """A new request, awaiting its code: 202 whether or not the address is known to us; 410 from the date
    the site ceases operation (policy §3(II): until the day before, requests are taken as usual)."""
    if not rights_open():
        raise errors.closed()
    risk = assess_submission(request, "rights")  # the portal's risk rules (no CAPTCHA here: its own rate instead)
    if risk.refused is not None:
        raise errors.refused(risk.refused)
    language = payload.language or get_language() or settings.LANGUAGE_CODE
    try:
        forms.ChoiceField(choices=settings.LANGUAGES).clean(language)
    except forms.ValidationError as exc:
        raise errors.invalid({"language": list(exc.messages)}) from None
    form = RightsRequestForm(data=payload.dict(exclude={"language"}))
    _checked(form)
    given = form.to_input(language)
    _count_code_mail(given.email)
    # The device and software information of the request (policy §一(I)1.2), as the portal records it.
    created = submit_request(given, context="api.rights.submit", also=recording(request, EventKind.RIGHTS))
    return Status(
        202,
        {
            "reference": created.reference,
            "message": _(
                "We have sent a 6-digit code to the e-mail address you gave. Send it to this request's verify "
                "operation within %(minutes)d minutes to confirm that the request is yours; until then it is not "
                "received."
            )
            % {"minutes": int(CODE_LIFETIME.total_seconds() // 60)},
        },
    )


def _opened(check: CodeCheck) -> dict[str, Any]:
    if not check.ok or check.request is None:
        raise errors.code_refused(check.outcome)
    view = read_status(check.request.pk)  # what the portal's next page reads
    if view is None:
        raise errors.not_found()
    return {
        "reference": view.request.reference,
        "status": view.request.status,
        "received_on": view.request.received_on,
        "due_on": view.due_on,
        "provisional": view.provisional,
        "token": tokens.issue(view.request),
        "token_type": "Bearer",
        "expires_in": tokens.TOKEN_SECONDS,
    }


@router.post("/requests/{reference}/verify", response={200: Opened, **ERRORS}, summary="Confirm with the code")
@_limited("rights_code")
def verify(request: HttpRequest, payload: CodeIn, reference: str = REFERENCE) -> dict[str, Any]:
    """The code from the first e-mail: the request is received; its due date and a token."""
    data = _checked(CodeForm(data={"reference": reference, "code": payload.code}))
    return _opened(verify_code(data["reference"], data["code"]))


@router.post(
    "/requests/{reference}/follow-code", response={202: Accepted, **ERRORS}, summary="Ask for a code to follow it"
)
@_limited("rights")
def follow_code(request: HttpRequest, payload: FollowIn, reference: str = REFERENCE) -> Status[dict[str, Any]]:
    """A code e-mailed if the address is the request's: the same 202 either way."""
    data = _checked(FollowForm(data={"reference": reference, "email": payload.email}))
    _count_code_mail(data["email"])
    send_follow_code(data["reference"], data["email"])
    return Status(
        202,
        {
            "message": _(
                "If the reference and the e-mail address you gave belong together, we have sent a 6-digit code to "
                "that address. Send it to this request's open operation."
            )
        },
    )


@router.post("/requests/{reference}/open", response={200: Opened, **ERRORS}, summary="Open it with a code")
@_limited("rights_code")
def open_request(request: HttpRequest, payload: CodeIn, reference: str = REFERENCE) -> dict[str, Any]:
    """A code from follow-code (or an unused one from the first e-mail): a token to read the request."""
    data = _checked(CodeForm(data={"reference": reference, "code": payload.code}))
    return _opened(open_status(data["reference"], data["code"]))


@router.get(
    "/requests/{reference}",
    response={200: StatusOut, 401: errors.Error, 404: errors.Error, 400: errors.Error},
    auth=Token(),
    summary="Its status and steps",
)
def status(request: HttpRequest, reference: str = REFERENCE) -> dict[str, Any]:
    """The request the token opens, if it is this one; any other answers 404."""
    return _status(_opened_request(request, reference))


def _opened_request(request: HttpRequest, reference: str) -> RequestStatusView:
    """The request the bearer token opens, if it is the one the path names; any other is 404."""
    opened = tokens.opened_by(str(request.auth))  # type: ignore[attr-defined]  # set by ninja's auth
    wanted = normalise_reference(reference)
    if opened is None or opened.reference != wanted:
        raise errors.not_found()
    view = read_status(opened.request_id)
    if view is None or view.request.reference != wanted:
        raise errors.not_found()
    return view


@router.get(
    "/requests/{reference}/archive",
    response={401: errors.Error, 404: errors.Error, 400: errors.Error},
    auth=Token(),
    summary="Download its archive",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The archive, a zip: every category of data we hold about the person, as JSON and "
                "CSV, with a readable page. Each download is recorded.",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def archive(request: HttpRequest, reference: str = REFERENCE) -> StreamingHttpResponse:
    """The archive of a completed access or copy request while it is ready; 404 before, after it
    expired, and for any request the token does not open."""
    view = _opened_request(request, reference)
    try:
        chunks = open_request_archive(view.request)
    except ArchiveUnavailable:
        raise errors.not_found() from None
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{view.request.reference}.zip"'
    return response


def _archive(view: RequestStatusView) -> dict[str, Any] | None:
    state = request_archive(view.request)
    if state is None:
        return None
    ready = state.state == "ready"
    return {
        "state": state.state,
        "expires_at": state.expires_at,
        "lifetime_days": state.lifetime_days,
        "download": reverse("api:archive", kwargs={"reference": view.request.reference}) if ready else None,
    }


def _status(view: RequestStatusView) -> dict[str, Any]:
    request = view.request
    refused = request.status == RequestStatus.REFUSED
    return {
        "reference": request.reference,
        "kind": request.kind,
        "kind_label": str(RequestKind(request.kind).label),
        "status": request.status,
        "status_label": str(RequestStatus(request.status).label),
        "acting_as": request.acting_as,
        "received_on": request.received_on,
        "due_on": view.due_on,
        "provisional": view.provisional,
        "working_days_left": view.working_days_left,
        "overdue": view.overdue,
        "details": view.details,
        "extension_reason": view.extension_reason,
        "outcome": view.outcome,
        "complaint_routes": _(
            "If you disagree, you may complain to the authority that protects personal information (the Cyberspace "
            "Administration of China or its local office) or bring a claim before a people's court (PIPL 50)."
        )
        if refused
        else "",
        "steps": [
            {"status": s.status, "status_label": str(s.status.label), "at": s.at, "note": s.note} for s in view.steps
        ],
        "archive": _archive(view),
    }
