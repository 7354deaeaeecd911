from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from piwarden.staff.permissions import is_signed_in_staff

View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    """Signed in with password *and* TOTP, active staff, with a declared role; never cached."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_signed_in_staff(request.user):
            return redirect(f"{reverse('backoffice:login')}?{REDIRECT_FIELD_NAME}={request.path}")
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        response["Cache-Control"] += ", private, no-store"
        return response

    return wrapper
