"""The public downloads: the list, the file, and the signed-in holder clearing their histories."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from piwarden.consent.cookies import allows
from piwarden.downloads import access, actions, files
from piwarden.downloads.kinds import KINDS
from piwarden.downloads.visitors import signed_in_person

# A downloaded file is never a page: no script, no plugin, no form, not framed, not even if a
# browser were talked into rendering it (the sandbox gives it an opaque origin).
FILE_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


@require_safe
def resource_list(request: HttpRequest) -> HttpResponse:
    resources = list(access.published_resources())
    for resource in resources:
        resource.kind_label = KINDS[resource.kind].label  # type: ignore[attr-defined]  # for the template
    return render(request, "downloads/list.html", {"resources": resources})


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name as RFC 6266 / RFC 8187 ``filename*``."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@require_safe
def download(request: HttpRequest, resource_id: uuid.UUID) -> HttpResponseBase:
    resource = access.published_resource(resource_id)
    try:
        handle = files.path_of(resource.stored_name).open("rb")
    except FileNotFoundError:
        raise Http404 from None
    person = signed_in_person(request)
    if person is not None and request.method == "GET" and allows(request, "functional"):
        actions.record_download(person, resource)
    response = FileResponse(handle, content_type=KINDS[resource.kind].content_type)
    response["Content-Length"] = str(resource.size)
    response["Content-Disposition"] = content_disposition(resource.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private, no-cache"
    return response


def _back(request: HttpRequest) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("downloads:list")
    return HttpResponseRedirect(target)


@require_POST
def clear_downloads(request: HttpRequest) -> HttpResponse:
    """The holder deletes their download history (the account page's button)."""
    person = signed_in_person(request)
    if person is None:
        raise Http404
    actions.clear_download_history(person)
    return _back(request)


@require_POST
def clear_pages(request: HttpRequest) -> HttpResponse:
    """The holder deletes their browsing history (the account page's button)."""
    person = signed_in_person(request)
    if person is None:
        raise Http404
    actions.clear_browsing_history(person)
    return _back(request)
