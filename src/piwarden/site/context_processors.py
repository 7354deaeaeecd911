from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import translate_url

from piwarden.consent.cookies import banner_needed, sends_gpc
from piwarden.policy.declaration import load_declaration
from piwarden.policy.notice import notice_for


def controller(request: HttpRequest) -> dict[str, Any]:
    """What every page's header and footer show: the company, the contact, the other language."""
    path = request.get_full_path()
    return {
        "policy": load_declaration(),
        "url_zh": translate_url(path, "zh-hans"),
        "url_en": translate_url(path, "en"),
    }


def cookie_banner(request: HttpRequest) -> dict[str, Any]:
    """Whether the page asks for a cookie choice (not on the cookies page: it is the whole form).

    What this reads is part of a stored page's key (piwarden.consent.cookies.cache_key).
    """
    match = request.resolver_match
    if match is not None and match.url_name == "cookies":
        return {"cookie_banner": False}
    return {"cookie_banner": banner_needed(request), "cookie_gpc": sends_gpc(request)}


def policy_notice(request: HttpRequest) -> dict[str, Any]:
    """The notice of a material policy change every page shows until the visitor dismisses it.

    Not on the staff console (its pages are not the public's), and part of a stored page's key
    (piwarden.policy.notice.cache_key).
    """
    if request.path.startswith(("/backoffice/", "/en/backoffice/")):
        return {"policy_notice": None}
    return {"policy_notice": notice_for(request)}
