"""The downloads library in the console: publish, edit and withdraw resources (MANAGE_DOWNLOADS)."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from piwarden.backoffice.decorators import staff_required
from piwarden.downloads import access, actions
from piwarden.downloads.forms import ResourceForm, ResourceTextForm
from piwarden.downloads.kinds import KINDS


@staff_required
@require_http_methods(["GET", "POST"])
def downloads_page(request: HttpRequest) -> HttpResponse:
    resources = list(access.resources_for_staff(request.user))
    form = ResourceForm(request.POST or None, request.FILES or None)
    status = HTTPStatus.OK
    if request.method == "POST" and isinstance(request.user, User):
        if form.is_valid() and form.kind is not None:
            actions.publish_resource(
                form.text(), form.cleaned_data["file"], kind=form.kind, filename=form.filename, by=request.user
            )
            return redirect(reverse("backoffice:downloads") + "?done=published")
        status = HTTPStatus.BAD_REQUEST
    for resource in resources:
        resource.kind_label = KINDS[resource.kind].label  # type: ignore[attr-defined]  # for the template
    context: dict[str, Any] = {"resources": resources, "form": form, "done": _done(request)}
    return render(request, "backoffice/downloads.html", context, status=status)


def _done(request: HttpRequest) -> str:
    return {
        "published": _("Resource published."),
        "edited": _("Resource saved."),
        "withdrawn": _("Resource withdrawn: it is no longer listed, and its file was deleted."),
    }.get(request.GET.get("done", ""), "")


@staff_required
@require_http_methods(["GET", "POST"])
def download_edit(request: HttpRequest, resource_id: uuid.UUID) -> HttpResponse:
    resource = access.resource_for_staff(request.user, resource_id)
    initial = {name: getattr(resource, name) for name in ResourceTextForm.base_fields}
    form = ResourceTextForm(request.POST or None, initial=initial)
    status = HTTPStatus.OK
    if request.method == "POST" and isinstance(request.user, User):
        action = request.POST.get("action")
        if action == "withdraw":
            actions.withdraw_resource(resource, by=request.user)
            return redirect(reverse("backoffice:downloads") + "?done=withdrawn")
        if action == "save" and not resource.is_withdrawn and form.is_valid():
            actions.edit_resource(resource, form.text(), by=request.user)
            return redirect(reverse("backoffice:downloads") + "?done=edited")
        status = HTTPStatus.BAD_REQUEST
    context = {"resource": resource, "form": form, "kind_label": KINDS[resource.kind].label}
    return render(request, "backoffice/download_edit.html", context, status=status)
