"""Public pages.  Each view: rate-limit → validate → one domain call → render or redirect."""

from __future__ import annotations

import uuid
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from piwarden.inquiries.actions import Submission, submit_inquiry
from piwarden.inquiries.forms import ConsultationForm
from piwarden.inquiries.models import Inquiry
from piwarden.policy.gate import ProcessingRefused
from piwarden.site import throttle
from piwarden.site.pagecache import rendered_once


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


@require_http_methods(["GET", "HEAD", "POST"])
def consultation(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and NEW_CAPTCHA in request.POST:
        # The "new picture" button: no validation, nothing stored, what was typed shown again.
        # (A GET link would lose it, or put it in the URL and so in every log on the way.)
        return render(
            request, "site/consultation.html", {"form": ConsultationForm.refilled(request.POST), "new_captcha": True}
        )
    if request.method == "POST":
        # Throttle before any expensive work (CAPTCHA look-up, key unwrap, hashing), and outside
        # any transaction: the counter is one autocommit upsert (see piwarden.site.throttle).
        limit = throttle.hit(request, "consultation", settings.PIWARDEN_CONSULTATION_RATE)
        if limit.limited:
            form = ConsultationForm()
            response = render(
                request,
                "site/consultation.html",
                {"form": form, "error": _("Too many requests from your network. Please wait a minute and try again.")},
                status=429,
            )
            response["Retry-After"] = str(limit.retry_after)
            return response
        form = ConsultationForm(request.POST)
        replayed = _already_received(request)
        if replayed is not None:
            return redirect_to_received(replayed, again=True)
        if form.is_valid():
            data = form.cleaned_data
            try:
                inquiry, _created = submit_inquiry(
                    Submission(
                        name=data["name"],
                        phone=data["phone"],
                        email=data["email"],
                        company=data["company"],
                        industry=data["industry"],
                        position=data["position"],
                        region=data["region"],
                        product=data["product"],
                        submission_token=data["submission_token"],
                        language=get_language() or settings.LANGUAGE_CODE,
                        consent_text=str(form.fields["consent"].label),  # exactly what the box said
                    )
                )
            except ProcessingRefused:
                return render(
                    request,
                    "site/consultation.html",
                    {
                        "form": form,
                        "error": _(
                            "You have restricted the processing of your personal information, so we cannot take "
                            "this request online. Please call or e-mail us (see below)."
                        ),
                    },
                    status=409,
                )
            return redirect_to_received(inquiry, again=not _created)
        return render(request, "site/consultation.html", {"form": form}, status=400)
    return render(request, "site/consultation.html", {"form": ConsultationForm()})


NEW_CAPTCHA = "new_captcha"


def _already_received(request: HttpRequest) -> Inquiry | None:
    """The request this form already created, if the same form is posted again."""
    try:
        token = uuid.UUID(request.POST.get("submission_token", ""))
    except ValueError:
        return None  # a malformed token is not a replay; the form reports it
    return Inquiry.objects.filter(submission_token=token).first()


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
