"""The cookie banner's answers and the cookies page (``/cookies/``, ``/en/cookies/``).

The banner sits in pages stored once per language and path (piwarden.site.pagecache), so its
form carries no CSRF token: a token would make every first visit render in full and set the
``csrftoken`` cookie before the visitor chose anything.  A forged choice is refused instead by
the headers every browser sends with a POST (``Sec-Fetch-Site``, else ``Origin``): another
site's form or script cannot make them say "same origin".  A request with neither header comes
from no browser, so it holds no visitor's cookies to abuse (Go's CrossOriginProtection decides
the same way).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from piwarden.consent.actions import record_cookie_choice
from piwarden.consent.cookies import (
    COOKIE_NAME,
    CookieChoice,
    current_choice,
    new_consent_id,
    sends_gpc,
    set_choice_cookie,
)
from piwarden.consent.models import CookieAction
from piwarden.downloads.actions import forget_refused
from piwarden.downloads.visitors import signed_in_person
from piwarden.policy.declaration import load_declaration
from piwarden.ratelimit.decorators import rate_limit
from piwarden.security.actions import Refused
from piwarden.site.security_views import refusal_page

_ON = [("on", "on")]  # what a ticked checkbox sends; anything else is refused, not guessed at


class CookieChoiceForm(forms.Form):
    action = forms.ChoiceField(
        choices=[(a.value, a.value) for a in (CookieAction.ACCEPT_ALL, CookieAction.REJECT_ALL, CookieAction.CHOOSE)],
        error_messages={
            "required": gettext_lazy("Choose one of the buttons: accept all, reject all or save my choice."),
            "invalid_choice": gettext_lazy("Choose one of the buttons: accept all, reject all or save my choice."),
        },
    )
    functional = forms.ChoiceField(choices=_ON, required=False)
    analytics = forms.ChoiceField(choices=_ON, required=False)
    next = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("functional", "analytics"):
            self.fields[name].error_messages["invalid_choice"] = _("A cookie category may only be ticked or not.")


def _language() -> str:
    return "en" if get_language() == "en" else "zh-hans"


def same_origin(request: HttpRequest) -> bool:
    """Whether a POST comes from this site's own pages (see the module's docstring)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in {"same-origin", "none"}
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin == f"{request.scheme}://{request.get_host()}"


def _categories() -> list[dict[str, Any]]:
    cookies = load_declaration().cookies
    names = {
        "essential": (
            _("Strictly necessary"),
            _("Needed for the site to work safely: form protection and remembering your cookie choice. Always on."),
        ),
        "functional": (
            _("Functional"),
            _("Fill in forms for you with what you entered before, so that you type your details less often."),
        ),
        "analytics": (
            _("Analytics"),
            _("Record which pages you view and what you download, to improve the site."),
        ),
    }
    return [
        {"id": key, "name": name, "description": description, "cookies": [c for c in cookies if c.category == key]}
        for key, (name, description) in names.items()
    ]


def _page(
    request: HttpRequest, *, status: int = 200, error: str = "", form: CookieChoiceForm | None = None
) -> HttpResponse:
    choice = current_choice(request)
    current = choice if choice is not None and choice.current else None
    context = {
        "categories": _categories(),
        "choice": current,
        "outdated": choice is not None and current is None,
        "gpc": sends_gpc(request),
        "error": error,
        "form_errors": form.errors if form is not None else {},
        "cleared": request.GET.get("cleared") == "1",
        "saved": request.GET.get("saved") == "1",
    }
    return render(request, "site/cookies.html", context, status=status)


def _too_many(request: HttpRequest, refused: Refused) -> HttpResponse:
    return refusal_page(request, refused)


def _refused_origin(request: HttpRequest) -> HttpResponse:
    message = _("This choice did not come from this site's own page, so nothing was changed. Please choose again here.")
    return _page(request, status=403, error=message)


def _safe_next(request: HttpRequest, value: str) -> str:
    if value.startswith("/") and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()}):
        return value
    return ""


@csrf_exempt  # checked by same_origin() instead: see the module's docstring
@require_http_methods(["GET", "HEAD", "POST"])
@rate_limit("cookie_choice", rate_setting="PIWARDEN_COOKIE_CHOICE_RATE", refuse=_too_many)
def cookies(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request)
    if not same_origin(request):
        return _refused_origin(request)
    form = CookieChoiceForm(request.POST)
    next_url = _safe_next(request, request.POST.get("next", ""))
    if not form.is_valid() or (request.POST.get("next") and not next_url):
        error = _("Your choice could not be read, so nothing was changed. Please choose again.")
        return _page(request, status=400, error=error, form=form)
    action = CookieAction(form.cleaned_data["action"])
    functional = action == CookieAction.ACCEPT_ALL or (
        action == CookieAction.CHOOSE and form.cleaned_data["functional"] == "on"
    )
    analytics = action == CookieAction.ACCEPT_ALL or (
        action == CookieAction.CHOOSE and form.cleaned_data["analytics"] == "on"
    )
    gpc = sends_gpc(request)
    previous = current_choice(request)
    choice = CookieChoice(
        consent_id=previous.consent_id if previous is not None else new_consent_id(),
        version=load_declaration().cookies_version,
        functional=functional,
        analytics=analytics and not gpc,  # Global Privacy Control refuses analytics, whatever was clicked
    )
    channel = "script" if _from_script(request) else ("banner" if next_url else "cookies_page")
    record_cookie_choice(choice, action=action, gpc=gpc, channel=channel, language=_language())
    _forget_refused(request, choice)
    if _from_script(request):
        response = HttpResponse(status=204)
    else:
        response = redirect(next_url or reverse("site:cookies") + "?saved=1")
        response.status_code = 303
    set_choice_cookie(response, choice)
    return response


def _forget_refused(request: HttpRequest, choice: CookieChoice) -> None:
    """A signed-in holder who now refuses a category loses the history it covered (piwarden.downloads)."""
    person = signed_in_person(request)
    if person is not None:
        forget_refused(person, functional=choice.functional, analytics=choice.analytics)


def _from_script(request: HttpRequest) -> bool:
    """The banner's script asks for no page back (it closes the banner itself)."""
    return request.headers.get("Accept") == "application/json"


@csrf_exempt  # checked by same_origin() instead: see the module's docstring
@require_POST
@rate_limit("cookie_choice", rate_setting="PIWARDEN_COOKIE_CHOICE_RATE", refuse=_too_many)
def delete_cookies(request: HttpRequest) -> HttpResponse:
    """Expire every cookie the declaration lists; the choice is gone too and is asked again."""
    if not same_origin(request):
        return _refused_origin(request)
    if request.POST.keys() - {"confirm"} or request.POST.get("confirm") != "1":
        return _page(request, status=400, error=_("Your request could not be read, so nothing was deleted."))
    previous = current_choice(request)
    if previous is not None:
        # The record that the choice ended: from here on nothing non-essential is allowed.
        withdrawn = CookieChoice(
            previous.consent_id, load_declaration().cookies_version, functional=False, analytics=False
        )
        record_cookie_choice(
            withdrawn, action=CookieAction.CLEARED, gpc=sends_gpc(request), channel="cookies_page", language=_language()
        )
        _forget_refused(request, withdrawn)
    response = redirect(reverse("site:cookies") + "?cleared=1")
    response.status_code = 303
    for cookie in load_declaration().cookies:
        response.delete_cookie(cookie.name, samesite="Lax")
    assert COOKIE_NAME in response.cookies  # noqa: S101  # the declaration lists the choice's own cookie
    return response
