"""The pages of a refusal by a risk rule (policy §一(I)1.2; PIPL 24): what the person sees when a
rate limit, the block of a client that submitted too often or the CAPTCHA rule refuses them, and
the small form where they ask a member of staff to review it, citing the refusal's reference.

The review page answers with the same words whether a reference exists or not only where nothing
is revealed by saying so: a reference is ten random characters that only the refused browser was
shown, so telling "no such reference" helps a person who mistyped it and no one else.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from piwarden.ratelimit.decorators import rate_limit
from piwarden.security.access import review_status
from piwarden.security.actions import Refused, ReviewRefused, request_review
from piwarden.security.models import EXPLAINED, MESSAGE_MAX_LENGTH, REFERENCE_LENGTH, Rule


def refusal_page(request: HttpRequest, refused: Refused) -> HttpResponse:
    """The refusal, its reference, when to try again and how to ask for review (status 429)."""
    minutes = max(1, (refused.retry_after + 59) // 60)
    context = {
        "refused": refused,
        "explanation": EXPLAINED[Rule(refused.rule)],
        "minutes": minutes,
        "review_url": f"{reverse('site:security_review')}?{urlencode({'ref': refused.reference})}",
    }
    response = render(request, "site/refused.html", context, status=429)
    response["Retry-After"] = str(refused.retry_after)
    return response


class ReviewForm(forms.Form):
    reference = forms.CharField(
        label=gettext_lazy("Reference of the refusal"),
        min_length=REFERENCE_LENGTH,
        max_length=REFERENCE_LENGTH,
        help_text=gettext_lazy("The ten characters shown on the refusal page."),
        error_messages={
            "required": gettext_lazy("Enter the reference shown on the refusal page."),
            "min_length": gettext_lazy("A reference has exactly ten characters."),
            "max_length": gettext_lazy("A reference has exactly ten characters."),
        },
    )
    message = forms.CharField(
        label=gettext_lazy("What were you doing when you were refused?"),
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=gettext_lazy("A member of staff reads this. Up to 1000 characters."),
        error_messages={
            "required": gettext_lazy("Tell us briefly what you were doing, so that we can review the refusal."),
            "max_length": gettext_lazy("Please keep it to 1000 characters."),
        },
    )

    def clean_reference(self) -> str:
        return str(self.cleaned_data["reference"]).strip().upper()


def _too_many(request: HttpRequest, refused: Refused) -> HttpResponse:
    return refusal_page(request, refused)


def _review_page(request: HttpRequest, form: ReviewForm, status: int = 200, **context: Any) -> HttpResponse:
    return render(request, "site/security_review.html", {"form": form, **context}, status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@rate_limit("security_review", rate_setting="PIWARDEN_RIGHTS_RATE", refuse=_too_many)
def security_review(request: HttpRequest) -> HttpResponse:
    """``GET ?ref=``: the review's state if one was asked for, else the form; ``POST``: ask for it."""
    if request.method != "POST":
        reference = request.GET.get("ref", "")[:REFERENCE_LENGTH].strip().upper()
        status = review_status(reference) if reference else None
        if status is not None and status.requested:
            return _review_page(request, ReviewForm(), review=status)
        return _review_page(request, ReviewForm(initial={"reference": reference}))
    form = ReviewForm(request.POST)
    if not form.is_valid():
        return _review_page(request, form, status=400)
    try:
        refusal = request_review(
            form.cleaned_data["reference"], form.cleaned_data["message"], language=get_language() or ""
        )
    except ReviewRefused as refused:
        return _review_page(request, form, status=400, error=_(str(refused)))
    return redirect(f"{reverse('site:security_review')}?{urlencode({'ref': refusal.reference, 'sent': '1'})}")
