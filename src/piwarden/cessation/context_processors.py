from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from piwarden.cessation.state import current


def notice(request: HttpRequest) -> dict[str, Any]:
    """The cessation's standing, for the notice every page shows (``base.html``) while one is announced.

    What this reads is part of a stored page's key (``piwarden.cessation.state.page_key``).
    """
    return {"cessation": current()}
