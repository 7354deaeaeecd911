"""The archive that answers an access or copy request, for the person who asked (rights-queue).

The completion e-mail of an access or copy request links here.  The page needs the identity the
status page verified: the request opened in this browser with a code (the intake's signed cookie,
30 minutes); without it the person is sent to ``/rights/status/`` for a code.  The archive is the
newest one built for that request; it can be downloaded until it expires (5 days, the declared
retention of ``rights_archives``), and every download is recorded (``rights.archive.download``).
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from piwarden.rights.archive import ArchiveUnavailable, archive_context, archive_of_request, open_request_archive
from piwarden.site.rights_views import _opened  # the intake's verified opening of a request


@never_cache
@require_safe
def rights_archive(request: HttpRequest) -> HttpResponse:
    view = _opened(request)
    if view is None:
        return redirect("site:rights_status")
    archive = archive_of_request(view.request)
    context = {"request_": view.request, **(archive_context(archive) if archive is not None else {})}
    return render(request, "site/rights_archive.html", context)


@never_cache
@require_safe
def rights_archive_download(request: HttpRequest) -> HttpResponseBase:
    view = _opened(request)
    if view is None:
        return redirect("site:rights_status")
    try:
        chunks = open_request_archive(view.request)
    except ArchiveUnavailable:
        raise Http404 from None
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{view.request.reference}.zip"'
    return response
