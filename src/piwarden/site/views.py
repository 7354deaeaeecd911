"""Public pages.  Each view: rate-limit → validate → one domain call → render or redirect."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from piwarden.cessation.state import accepting_new_data
from piwarden.cessation.views import closed
from piwarden.inquiries.actions import submit_inquiry
from piwarden.inquiries.models import Inquiry
from piwarden.processing.gate import ProcessingRefused
from piwarden.ratelimit.decorators import rate_limit
from piwarden.ratelimit.limiter import Limit
from piwarden.security.actions import Refused, recording
from piwarden.security.models import EventKind
from piwarden.security.risk import assessed, count_captcha_failure, count_submission
from piwarden.site.actions import record_captcha_failure
from piwarden.site.forms import ConsultationPageForm, TakenChallenge, new_challenge, take_posted_challenge
from piwarden.site.pagecache import FilledInPage, Values, rendered_once
from piwarden.site.security_views import refusal_page


@require_safe  # GET and HEAD: uptime checkers ask with HEAD
@rendered_once  # depends only on the language and the path
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "site/home.html")


@require_safe  # GET and HEAD: uptime checkers ask with HEAD
@rendered_once  # depends only on the language and the path
def privacy(request: HttpRequest) -> HttpResponse:
    language = "en" if get_language() == "en" else "zh-hans"
    return render(request, "site/privacy.html", {"policy_text": f"privacy/{language}.html"})


@require_safe  # GET and HEAD: uptime checkers ask with HEAD
@rendered_once  # depends only on the language and the path
def contact(request: HttpRequest) -> HttpResponse:
    return render(request, "site/contact.html")


NEW_CAPTCHA = "new_captcha"


def _consultation_page(
    request: HttpRequest, form: ConsultationPageForm, status: int = 200, **context: Any
) -> HttpResponse:
    return render(request, "site/consultation.html", {"form": form, **context}, status=status)


def _is_submission(request: HttpRequest) -> bool:
    # The "new picture" button posts too, but stores nothing: it is not counted.
    return request.method == "POST" and NEW_CAPTCHA not in request.POST


def _too_many_requests(request: HttpRequest, refused: Refused) -> HttpResponse:
    return refusal_page(request, refused)


# --- the empty form: stored once per language, filled in with each visitor's own values ---------


def _empty_form_context(request: HttpRequest) -> dict[str, Any]:
    return {"form": ConsultationPageForm(), "csrf_token": get_token(request)}


def _values_shown(context: dict[str, Any]) -> Values:
    """The per-visitor values in a rendered empty form: the CSRF token, the submission token, the CAPTCHA."""
    form = context["form"]
    values = {"csrf": str(context["csrf_token"]), "token": str(form.initial["submission_token"])}
    if "captcha" in form.fields:  # the widget keeps the key of the challenge it stored
        values["captcha"] = form.fields["captcha"].widget._key
    return values


def _new_values(request: HttpRequest) -> Values:
    """New values of the same names, made as the form makes them (the CAPTCHA challenge is stored)."""
    values = {"csrf": get_token(request), "token": str(uuid.uuid4())}
    if settings.PIWARDEN_CAPTCHA == "on":
        values["captcha"] = new_challenge()
    return values


EMPTY_CONSULTATION_PAGE = FilledInPage(
    "site/consultation.html", context=_empty_form_context, read=_values_shown, fresh=_new_values
)


@dataclass(frozen=True)
class Counted:
    """What a submission's counting turn decided (``_count_with_the_rate``)."""

    accepting: bool  # the cessation, read fresh in the turn
    risk: Limit | None = None  # the risk rules' count (None: not taken, the form is closed)
    captcha: TakenChallenge | None = None  # the posted challenge, used up


def _count_with_the_rate(request: HttpRequest) -> Counted:
    """A submission's other writes before any work, in the rate limit's short write transaction
    (``@rate_limit(joined=…)``), after its count: one turn of SQLite's write lock and one commit
    where there were three.  All are committed before the submission's own transaction opens, so
    neither its rollback nor the gate's refusal gives back a count or a used challenge."""
    if not accepting_new_data(fresh=True):  # nothing counted or used up for a closed form, as before
        return Counted(accepting=False)
    risk = count_submission(request)
    # A blocked client's challenge is left alone, as before (its refusal page asks nothing).
    return Counted(accepting=True, risk=risk, captcha=None if risk.limited else take_posted_challenge(request.POST))


@require_http_methods(["GET", "HEAD", "POST"])
@rate_limit(
    "consultation",
    rate_setting="PIWARDEN_CONSULTATION_RATE",
    refuse=_too_many_requests,
    counts=_is_submission,
    joined=_count_with_the_rate,
)
def consultation(request: HttpRequest) -> HttpResponse:
    counted: Counted | None = request.joined  # type: ignore[attr-defined]  # set by @rate_limit for a submission
    # The site's cessation is announced: nothing new is collected (asked fresh before storing).
    if not (counted.accepting if counted is not None else accepting_new_data(fresh=request.method == "POST")):
        return closed(request, gettext_lazy("Consultation requests are closed"))
    if request.method != "POST":
        return EMPTY_CONSULTATION_PAGE(request)
    if NEW_CAPTCHA in request.POST:
        # The "new picture" button: no validation, nothing stored, what was typed shown again.
        # (A GET link would lose it, or put it in the URL and so in every log on the way.)
        return _consultation_page(request, ConsultationPageForm.refilled(request.POST), new_captcha=True)
    # The risk rules: a harder CAPTCHA, or a refusal.  Every submission was counted in the rate
    # limit's turn (``_is_submission``; an accepting form takes the risk count there, a refused
    # one never reaches the view), so the view only reads what that turn decided.
    if counted is None or counted.risk is None:
        raise RuntimeError("the consultation view runs only under @rate_limit(joined=_count_with_the_rate)")
    risk = assessed(request, "consultation", counted.risk)
    if risk.refused is not None:
        return refusal_page(request, risk.refused)
    form = ConsultationPageForm(request.POST, hard=risk.harder, taken=counted.captcha)
    if not form.is_valid():
        # A form posted again after it was stored fails here (its CAPTCHA was used up): show the first.
        replayed = _already_received(form)
        if replayed is not None:
            return redirect_to_received(replayed, again=True)
        if form.has_error("captcha", "invalid"):
            record_captcha_failure("consultation")
            refused = count_captcha_failure(request, "consultation")
            if refused is not None:
                return refusal_page(request, refused)
        return _consultation_page(request, form, status=400)
    try:
        # The request's device and software information (policy §一(I)1.2), in the submission's own transaction.
        inquiry, created = submit_inquiry(
            form.to_submission(),
            also=recording(request, EventKind.CONSULTATION),
        )
    except ProcessingRefused:
        error = _(
            "You have restricted the processing of your personal information, so we cannot take "
            "this request online. Please call or e-mail us (see below)."
        )
        return _consultation_page(request, form, status=409, error=error)
    return redirect_to_received(inquiry, again=not created)  # a replay with a valid form: the first request


def _already_received(form: ConsultationPageForm) -> Inquiry | None:
    """The request this form already created, if the same form is posted again."""
    token = form.cleaned_data.get("submission_token")  # absent when malformed: not a replay, an error
    return None if token is None else Inquiry.objects.filter(submission_token=token).first()


def redirect_to_received(inquiry: Inquiry, *, again: bool) -> HttpResponse:
    url = reverse("site:consultation_received") + f"?ref={inquiry.reference}"
    if again:
        url += "&again=1"
    return redirect(url)


@require_safe  # GET and HEAD: uptime checkers ask with HEAD
def consultation_received(request: HttpRequest) -> HttpResponse:
    reference = request.GET.get("ref", "")[:10]
    known = Inquiry.objects.filter(reference=reference).exists()
    return render(
        request,
        "site/consultation_received.html",
        {
            "reference": reference if known else "",
            "again": request.GET.get("again") == "1",
            "acknowledgement_delivered": acknowledgement_delivered(),
        },
        status=200 if known else 404,
    )


# Mail backends that keep messages (sealed files, the console, memory) and deliver nothing.
_UNDELIVERED = frozenset(
    {
        "piwarden.vault.outbox.SealedFileBackend",
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
    }
)


def acknowledgement_delivered() -> bool:
    """Whether the acknowledgement e-mail really leaves this site (PIWARDEN_EMAIL=smtp), for the page to say so."""
    return str(settings.MAILERS["default"]["BACKEND"]) not in _UNDELIVERED


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF refusal, in the visitor's language and with what to do next."""
    message = _(
        "This form has expired, or your browser did not send the cookie that protects it. "
        "Reload the page, fill the form in again and send it; nothing was stored."
    )
    return render(request, "site/error.html", {"message": message}, status=403)


# --- the site's own pages for refused requests (urls.handler400, UrlLengthMiddleware) ---------

_HTTP_ERRORS = {
    HTTPStatus.BAD_REQUEST: (
        gettext_lazy("Bad request"),
        gettext_lazy("Your browser sent a request this site could not understand. Nothing was stored."),
    ),
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: (
        gettext_lazy("Request too large"),
        gettext_lazy("What your browser sent was larger than any form on this site accepts. Nothing was stored."),
    ),
    HTTPStatus.REQUEST_URI_TOO_LONG: (
        gettext_lazy("Address too long"),
        gettext_lazy("The web address is longer than any page on this site has. Please check the link."),
    ),
}


def http_error(request: HttpRequest, status: HTTPStatus) -> HttpResponse:
    """A refusal in the visitor's language, with the site's header, footer and a way back."""
    title, message = _HTTP_ERRORS[status]
    context: dict[str, object] = {"status": status.value, "title": title, "message": message}
    if status == HTTPStatus.REQUEST_URI_TOO_LONG:
        context |= {"url_zh": "/", "url_en": "/en/"}  # not the over-long address again, twice
    return render(request, "site/http_error.html", context, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 handler: a body too large (or with too many fields or files) is a 413."""
    if isinstance(exception, (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)):
        return http_error(request, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    return http_error(request, HTTPStatus.BAD_REQUEST)
