"""The guardian's page (policy §八; law CHD-01, CHD-02): consent or refuse for a child.

Reached only through the one-use link e-mailed to the guardian (``children.mail``).  The page
says, before the guardian decides, what the child's data is, why, where and how long it is kept,
how it is protected, what a refusal means, and how to complain, correct or delete (CHD-02); it
shows no personal data (the purposes and categories come from the declaration).  Two buttons of
equal weight: consent (with the separate-consent box ticked) or refuse.  A link that is forged,
used, replaced or expired answers 404 with what to do.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from piwarden.children.access import GuardianLinkInvalid, open_guardian_request
from piwarden.children.actions import confirm_guardian_consent, decline_guardian_consent
from piwarden.children.forms import CONSENT, GuardianDecisionForm, consent_text
from piwarden.children.models import GuardianRequest
from piwarden.policy.declaration import load_declaration
from piwarden.ratelimit.decorators import rate_limit
from piwarden.security.actions import Refused
from piwarden.site.security_views import refusal_page


def _too_many_requests(request: HttpRequest, refused: Refused) -> HttpResponse:
    return refusal_page(request, refused)


def _explained(request: GuardianRequest) -> dict[str, Any]:
    """What the page explains: the purposes asked for, and the data categories that serve them."""
    declaration = load_declaration()
    purposes = [declaration.purpose(p) for p in request.purposes]
    categories = []
    for purpose in purposes:
        for category in declaration.categories_for_purpose(purpose.id):
            if category not in categories:
                categories.append(category)
    names = "; ".join(str(p.name) for p in purposes)
    return {
        "purposes": purposes,
        "categories": categories,
        "consent_label": consent_text(str(declaration.controller.name), names),
        "policy": declaration,
    }


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@rate_limit("guardian", rate_setting="PIWARDEN_RIGHTS_RATE", refuse=_too_many_requests)
def guardian(request: HttpRequest, token: str) -> HttpResponse:
    try:
        asked = open_guardian_request(token)
    except GuardianLinkInvalid:
        return render(request, "site/guardian_invalid.html", status=HTTPStatus.NOT_FOUND)
    context = _explained(asked)
    data = request.POST if request.method == "POST" else None  # an empty post is bad input, not a first view
    form = GuardianDecisionForm(data, consent_label=context["consent_label"])
    if request.method != "POST":
        return render(request, "site/guardian.html", {**context, "form": form, "asked": asked})
    if not form.is_valid():
        return render(request, "site/guardian.html", {**context, "form": form, "asked": asked}, status=400)
    try:
        if form.cleaned_data["decision"] == CONSENT:
            confirm_guardian_consent(token, shown_text=context["consent_label"], language=get_language() or "zh-hans")
            return render(request, "site/guardian_done.html", {**context, "consented": True})
        decline_guardian_consent(token)
    except GuardianLinkInvalid:  # answered meanwhile (another tab), or expired
        return render(request, "site/guardian_invalid.html", status=HTTPStatus.NOT_FOUND)
    return render(request, "site/guardian_done.html", {**context, "consented": False})
