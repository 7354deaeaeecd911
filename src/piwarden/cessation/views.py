"""The page a collecting form shows instead of itself once the site's cessation is announced.

Not an error: the visitor learns why nothing is collected and what they can still do (ask for a
copy or the deletion of their data until the date, call or write).  Answered with 200 to a GET
and to a POST alike; a POST stores nothing.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.functional import Promise

from piwarden.cessation.state import read


def closed(request: HttpRequest, title: str | Promise) -> HttpResponse:
    return render(
        request,
        "cessation/closed.html",
        {"title": title, "cessation": read(), "posted": request.method == "POST"},
    )
