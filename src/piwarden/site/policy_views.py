"""The policy's versions (``/privacy/versions/``) and the dismissal of a material change's notice."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from piwarden.accounts import sessions
from piwarden.accounts.actions import record_notice_dismissed
from piwarden.policy.changes import KIND_NAMES, compare, compare_texts
from piwarden.policy.models import MaterialKind, PolicyVersion
from piwarden.policy.notice import set_dismissed_cookie
from piwarden.policy.versions import declaration_of, render_text, text_name
from piwarden.site.cookie_views import same_origin


def _language() -> str:
    return "en" if get_language() == "en" else "zh-hans"


def _entry(version: PolicyVersion, previous: PolicyVersion | None, request: HttpRequest) -> dict[str, Any]:
    language = _language()
    entry: dict[str, Any] = {
        "version": version,
        "kinds": [str(KIND_NAMES[MaterialKind(k)]) for k in version.kinds],
        "notice": version.notice(language),
        "sections": None,  # the first version: nothing to compare with
    }
    if previous is not None:
        comparison = compare(declaration_of(previous), declaration_of(version), language)
        entry["sections"] = [s for s in comparison.sections if s.lines]
        entry["stale"] = [str(declaration_of(version).purpose(p).name.get(language)) for p in comparison.stale_purposes]
        entry["text_changes"] = compare_texts(
            render_text(previous, language, request), render_text(version, language, request)
        )
    return entry


@require_safe
def versions(request: HttpRequest) -> HttpResponse:
    """Every published version, newest first, with what changed since the one before (CHG-02)."""
    published = list(PolicyVersion.objects.order_by("number"))
    entries = [_entry(v, published[i - 1] if i else None, request) for i, v in enumerate(published)]
    return render(request, "site/privacy_versions.html", {"entries": entries[::-1]})


@require_safe
def version(request: HttpRequest, number: int) -> HttpResponse:
    """One version's privacy text as it was published, rendered with its own declaration."""
    found = PolicyVersion.objects.filter(number=number).first()
    if found is None or text_name(get_language()) not in found.texts:
        raise Http404
    return render(
        request, "site/privacy_version.html", {"version": found, "text": render_text(found, _language(), request)}
    )


def _safe_next(request: HttpRequest, value: str) -> str:
    if value.startswith("/") and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()}):
        return value
    return ""


@csrf_exempt  # the notice sits in stored pages without a CSRF token: same_origin() instead (cookie_views)
@require_POST  # a cookie, and for a signed-in holder one update of their account's row: nothing to rate-limit
def dismiss_notice(request: HttpRequest) -> HttpResponse:
    """Close the notice of a material change for this browser (the strictly necessary piwarden_notice
    cookie) and, for a signed-in account holder, for their account on every device."""
    number = request.POST.get("version", "")
    found = PolicyVersion.objects.filter(number=int(number)).first() if number.isdigit() else None
    next_url = _safe_next(request, request.POST.get("next", ""))
    if not same_origin(request) or found is None or not found.material:
        message = _("This notice could not be closed, so nothing was changed. Please use the button on the notice.")
        return render(request, "site/error.html", {"message": message}, status=400)
    session = sessions.current(request)
    if session is not None:
        record_notice_dismissed(session.account, found.number)
    response = redirect(next_url or reverse("site:privacy_versions"))
    response.status_code = 303
    set_dismissed_cookie(response, found)
    return response
