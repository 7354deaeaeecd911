"""Public pages.  Each view: rate-limit → validate → one domain call → render or redirect."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from piwarden.inquiries.actions import Submission, submit_inquiry
from piwarden.inquiries.forms import ConsultationForm
from piwarden.inquiries.models import Inquiry
from piwarden.policy.gate import ProcessingRefused
from piwarden.site import throttle


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "site/home.html")


@require_GET
def privacy(request: HttpRequest) -> HttpResponse:
    language = "en" if get_language() == "en" else "zh-hans"
    return render(request, "site/privacy.html", {"policy_text": f"privacy/{language}.html"})


@require_GET
def contact(request: HttpRequest) -> HttpResponse:
    return render(request, "site/contact.html")


@require_http_methods(["GET", "POST"])
def consultation(request: HttpRequest) -> HttpResponse:
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


@require_GET
def consultation_received(request: HttpRequest) -> HttpResponse:
    reference = request.GET.get("ref", "")[:10]
    known = Inquiry.objects.filter(reference=reference).exists()
    return render(
        request,
        "site/consultation_received.html",
        {"reference": reference if known else "", "again": request.GET.get("again") == "1"},
        status=200 if known else 404,
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF refusal, in the visitor's language and with what to do next."""
    message = _(
        "This form has expired, or your browser did not send the cookie that protects it. "
        "Reload the page, fill the form in again and send it; nothing was stored."
    )
    return render(request, "site/error.html", {"message": message}, status=403)
