"""The rights portal's pages (issue 7 §1; policy §六): ask, confirm with a code, follow.

In the site app, beside the consultation's pages, because they are the public interface's:
the same base template, CSRF and CSP rules, error pages and rate limits; the rights app holds
the domain (``rights.actions``, ``rights.forms``, ``rights.access``), which the JSON API calls too.

The flow, each step a plain form (no JavaScript):

1. ``/rights/``: the rights explained, and the request form (kind, e-mail, details, on whose
   behalf, CAPTCHA) → a request awaiting verification, and a code e-mailed → ``/rights/verify/``;
2. ``/rights/verify/``: the reference and the 6-digit code → received (due date set) →
   ``/rights/received/``, the confirmation with the reference and the due date;
3. ``/rights/status/``: the reference and the e-mail → a code e-mailed (if they belong together;
   the answer is the same either way) → ``/rights/status/code/`` → ``/rights/status/view/``.

A right code opens one request for this browser for 30 minutes: a signed cookie holding the
request's id (``piwarden_rights``, declared essential), never a server-side session (visitors get
none).  Every page shows only the request in that cookie.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from piwarden.cessation.state import rights_open
from piwarden.cessation.views import closed
from piwarden.ratelimit.decorators import rate_limit
from piwarden.ratelimit.limiter import hit_key
from piwarden.rights.access import RequestStatusView, read_status
from piwarden.rights.actions import (
    CodeCheck,
    open_status,
    send_follow_code,
    submit_request,
    verify_request,
)
from piwarden.rights.archive import request_archive
from piwarden.rights.forms import CodeForm, FollowForm, code_refusal, too_many_codes_message
from piwarden.rights.models import CODE_LIFETIME, RequestKind, RightsRequest
from piwarden.security.actions import Refused, recording
from piwarden.security.models import EventKind
from piwarden.security.risk import assess_submission, count_captcha_failure
from piwarden.site.actions import record_captcha_failure
from piwarden.site.forms import RightsRequestPageForm
from piwarden.site.security_views import refusal_page

STATUS_COOKIE = "piwarden_rights"
STATUS_SECONDS = 30 * 60
_SALT = "piwarden.site.rights_views.status"

# One line per right, under its name (the request kinds' labels): policy §六 and PIPL Arts 44-50.
EXPLANATIONS = {
    RequestKind.ACCESS: gettext_lazy("Ask what personal information about you we hold, and how we use it (PIPL 45)."),
    RequestKind.COPY: gettext_lazy(
        "Receive a copy of it, readable and machine-readable, or have it passed to another company you name (PIPL 45)."
    ),
    RequestKind.CORRECTION: gettext_lazy("Have inaccurate or incomplete information corrected or completed (PIPL 46)."),
    RequestKind.DELETION: gettext_lazy(
        "Have your personal information deleted, except what a law requires us to keep (PIPL 47)."
    ),
    RequestKind.RESTRICTION: gettext_lazy(
        "Restrict or refuse our processing: we then only store it and use it for security (PIPL 44)."
    ),
    RequestKind.WITHDRAWAL: gettext_lazy(
        "Withdraw a consent you gave; what we did before stays lawful, and we stop from then on (PIPL 15)."
    ),
    RequestKind.EXPLANATION: gettext_lazy(
        "Ask us to explain the rules by which we process your information (PIPL 48)."
    ),
    RequestKind.CANCELLATION: gettext_lazy("Close an account you hold with us, and have its data deleted."),
    RequestKind.DECEASED_RELATIVE: gettext_lazy(
        "As a close relative of a deceased person, access, copy, correct or delete their information for your own "
        "lawful interests, unless they arranged otherwise (PIPL 49)."
    ),
    RequestKind.COMPLAINT: gettext_lazy("Complain, or ask a question, about this privacy policy or how we follow it."),
}


def _too_many_requests(request: HttpRequest, refused: Refused) -> HttpResponse:
    return refusal_page(request, refused)


def _mail_limited(email: str) -> bool:
    """Count one code mailed to this address; over the rate, the code is not sent."""
    return hit_key("rights_mail", f"email:{email}", settings.PIWARDEN_RIGHTS_MAIL_RATE).limited


# --- 1. the request ------------------------------------------------------------------------


def _rights_page(request: HttpRequest, form: RightsRequestPageForm, status: int = 200, **context: Any) -> HttpResponse:
    rights = [(kind, kind.label, EXPLANATIONS[kind]) for kind in RequestKind]
    return render(request, "site/rights.html", {"form": form, "rights": rights, **context}, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@rate_limit("rights", rate_setting="PIWARDEN_RIGHTS_RATE", refuse=_too_many_requests)
def rights(request: HttpRequest) -> HttpResponse:
    # Open until the day before the site's cessation (people get their copy or erasure first);
    # from the date, everything is erased and there is nothing left to ask about.
    if not rights_open():
        return closed(request, gettext_lazy("Requests about your personal information are closed"))
    if request.method != "POST":
        return _rights_page(request, RightsRequestPageForm())
    risk = assess_submission(request, "rights")  # the risk rules: a harder CAPTCHA, or a refusal
    if risk.refused is not None:
        return refusal_page(request, risk.refused)
    form = RightsRequestPageForm(request.POST, hard=risk.harder)
    if not form.is_valid():
        if form.has_error("captcha", "invalid"):
            record_captcha_failure("rights")
            refused = count_captcha_failure(request, "rights")
            if refused is not None:
                return refusal_page(request, refused)
        return _rights_page(request, form, status=400)
    given = form.to_input()
    if _mail_limited(given.email):
        return _rights_page(request, form, status=429, error=too_many_codes_message())
    # The device and software information of the request (policy §一(I)1.2), in its own transaction.
    created = submit_request(given, also=recording(request, EventKind.RIGHTS))
    return redirect(_with_reference("site:rights_verify", created.reference))


def _with_reference(name: str, reference: str) -> str:
    return f"{reverse(name)}?{urlencode({'ref': reference})}"


# --- 2. the code typed back -------------------------------------------------------------


def _code_page(
    request: HttpRequest, form: CodeForm, *, follow: bool, status: int = 200, **context: Any
) -> HttpResponse:
    action = reverse("site:rights_status_code" if follow else "site:rights_verify")
    return render(
        request,
        "site/rights_code.html",
        {"form": form, "follow": follow, "action": action, "minutes": CODE_LIFETIME.seconds // 60, **context},
        status=status,
    )


def _code_view(request: HttpRequest, *, follow: bool) -> HttpResponse:
    if request.method != "POST":
        reference = request.GET.get("ref", "")[:20]
        return _code_page(request, CodeForm(initial={"reference": reference}), follow=follow)
    form = CodeForm(request.POST)
    if not form.is_valid():
        return _code_page(request, form, follow=follow, status=400)
    reference, code = form.cleaned_data["reference"], form.cleaned_data["code"]
    check: CodeCheck = open_status(reference, code) if follow else verify_request(reference, code)
    if not check.ok or check.request is None:
        error = code_refusal(check.outcome)
        return _code_page(request, CodeForm(initial={"reference": reference}), follow=follow, status=400, error=error)
    response = redirect("site:rights_status_view" if follow else "site:rights_received")
    _open_for_browser(response, check.request)
    return response


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@rate_limit("rights_code", rate_setting="PIWARDEN_RIGHTS_RATE", refuse=_too_many_requests)
def rights_verify(request: HttpRequest) -> HttpResponse:
    return _code_view(request, follow=False)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@rate_limit("rights_code", rate_setting="PIWARDEN_RIGHTS_RATE", refuse=_too_many_requests)
def rights_status_code(request: HttpRequest) -> HttpResponse:
    return _code_view(request, follow=True)


# --- the request opened for this browser ------------------------------------------------


def _open_for_browser(response: HttpResponse, opened: RightsRequest) -> None:
    response.set_signed_cookie(
        STATUS_COOKIE,
        str(opened.pk),
        salt=_SALT,
        # No max_age: gone when the browser closes; the signature's age limits it to 30 minutes.
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )


def _opened(request: HttpRequest) -> RequestStatusView | None:
    try:
        request_id = request.get_signed_cookie(STATUS_COOKIE, salt=_SALT, max_age=STATUS_SECONDS)
    except (KeyError, signing.BadSignature):
        return None
    return None if request_id is None else read_status(request_id)


def _status_page(request: HttpRequest, template: str) -> HttpResponse:
    view = _opened(request)
    if view is None:
        response = redirect("site:rights_status")
        response.delete_cookie(STATUS_COOKIE, samesite="Strict")
        return response
    archive = request_archive(view.request)  # a completed access or copy request's download
    return render(request, template, {"view": view, "request_": view.request, "archive": archive})


@never_cache
@require_safe
def rights_received(request: HttpRequest) -> HttpResponse:
    return _status_page(request, "site/rights_received.html")


@never_cache
@require_safe
def rights_status_view(request: HttpRequest) -> HttpResponse:
    return _status_page(request, "site/rights_status_view.html")


# --- 3. following a request ------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@rate_limit("rights", rate_setting="PIWARDEN_RIGHTS_RATE", refuse=_too_many_requests)
def rights_status(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "site/rights_status.html", {"form": FollowForm()})
    form = FollowForm(request.POST)
    if not form.is_valid():
        return render(request, "site/rights_status.html", {"form": form}, status=400)
    reference, email = form.cleaned_data["reference"], form.cleaned_data["email"]
    if _mail_limited(email):
        return render(request, "site/rights_status.html", {"form": form, "error": too_many_codes_message()}, status=429)
    send_follow_code(reference, email)  # the same answer whether or not they belong together
    return redirect(_with_reference("site:rights_status_code", reference))
