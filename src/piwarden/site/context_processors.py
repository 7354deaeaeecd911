from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import translate_url

from piwarden.policy.declaration import load_declaration


def controller(request: HttpRequest) -> dict[str, Any]:
    """What every page's header and footer show: the company, the contact, the other language."""
    path = request.get_full_path()
    return {
        "policy": load_declaration(),
        "url_zh": translate_url(path, "zh-hans"),
        "url_en": translate_url(path, "en"),
    }
