"""The public notice of a security incident (PIPL 57, MinorsReg 35): published by the privacy
officer when the persons affected cannot all be reached one by one.  Anyone may read it; an
incident whose notice is not published does not exist here (404)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.views.decorators.http import require_safe

from piwarden.incidents.access import published_incident
from piwarden.incidents.mail import notice_context


@require_safe
def incident_notice(request: HttpRequest, slug: str) -> HttpResponse:
    incident = published_incident(slug)
    if incident is None:
        raise Http404
    language = "en" if get_language() == "en" else "zh-hans"
    return render(request, "site/incident_notice.html", notice_context(incident, language))
