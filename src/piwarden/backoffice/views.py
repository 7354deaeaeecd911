"""The staff console: sign-in with TOTP, the masked inbox, purpose-bound reveal, the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from piwarden.audit.models import AuditEvent
from piwarden.backoffice.decorators import staff_required
from piwarden.backoffice.forms import ConsoleLanguageForm, InboxFilterForm, RevealForm, StaffLoginForm
from piwarden.inquiries import access as inquiry_access
from piwarden.inquiries.models import FIELD_LABELS, PERSONAL_FIELDS
from piwarden.policy.declaration import load_declaration, region_name
from piwarden.staff import access
from piwarden.staff.actions import record_failed_sign_in, set_console_language, sign_in_staff, sign_out_staff
from piwarden.staff.models import preferred_language


@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    form = StaffLoginForm(request, data=request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            sign_in_staff(request, form.get_user())
            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = ""
            return redirect(target or "backoffice:inbox")
        record_failed_sign_in(username=request.POST.get("username", ""), failed_step=form.failed_step)
        return render(request, "backoffice/login.html", {"form": form}, status=400)
    return render(request, "backoffice/login.html", {"form": form})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    sign_out_staff(request)
    return redirect("backoffice:login")


@staff_required
@require_http_methods(["GET", "POST"])
def preferences_view(request: HttpRequest) -> HttpResponse:
    """The console language: the staff member's own choice, kept with their account."""
    if not isinstance(request.user, User):  # staff_required makes this unreachable
        raise Http404
    context: dict[str, Any] = {"role": access.staff_role(request.user), "saved": request.GET.get("saved") == "1"}
    if request.method == "POST":
        form = ConsoleLanguageForm(request.POST)
        if form.is_valid():
            set_console_language(request.user, form.cleaned_data["language"])
            return redirect(reverse("backoffice:preferences") + "?saved=1")  # the next page speaks it
        return render(request, "backoffice/preferences.html", {**context, "form": form}, status=400)
    context["form"] = ConsoleLanguageForm(initial={"language": preferred_language(request.user)})
    return render(request, "backoffice/preferences.html", context)


@staff_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    role = access.staff_role(request.user)
    context: dict[str, Any] = {
        "role": role,
        "can_see_inquiries": inquiry_access.can_see_inquiries(role),
        "name_label": FIELD_LABELS["name"],  # the masked column, named as the model names the field
    }
    if not context["can_see_inquiries"]:
        return render(request, "backoffice/inbox.html", context)
    form = InboxFilterForm(request.GET)
    context["form"] = form
    if not form.is_valid():
        return render(request, "backoffice/inbox.html", context, status=400)
    rows = inquiry_access.list_inquiries_for_staff(request.user, form.inbox_filter())
    context["page"] = Paginator(rows, inquiry_access.INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    context["query"] = _query_without_page(request)
    return render(request, "backoffice/inbox.html", context)


@staff_required
@require_http_methods(["GET", "POST"])
def inquiry_detail(request: HttpRequest, reference: str) -> HttpResponse:
    inquiry = inquiry_access.access_inquiry_for_staff(request.user, reference)
    role = access.staff_role(request.user)
    if role is None:  # staff_required makes this unreachable
        raise Http404
    form = RevealForm(request.POST or None, role=role)
    context: dict[str, Any] = {"inquiry": inquiry, "form": form, "role": role}
    status = 200
    revealed: dict[str, str | None] = {}
    if request.method == "POST":
        form.is_valid()  # for the per-field messages; the access function decides
        try:
            revealed = inquiry_access.reveal_inquiry_fields(request.user, inquiry, **form.submitted()).values
        except inquiry_access.RevealRefused as exc:
            context["refusal"] = str(exc)
            status = exc.status
        else:
            context["form"] = RevealForm(role=role)  # the next reveal starts from nothing
    context["rows"] = [
        {"field": f, "label": FIELD_LABELS[f], "value": _readable(f, revealed.get(f))} for f in PERSONAL_FIELDS
    ]
    context["revealed_any"] = bool(revealed)
    return render(request, "backoffice/inquiry.html", context, status=status)


@staff_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    requested = request.GET.get("page") or "1"
    events = access.open_audit_log(request.user, page=requested)
    page = Paginator(events, access.AUDIT_PAGE_SIZE).get_page(requested)
    rows = [_audit_row(event) for event in page]
    context = {
        "page": page,
        "rows": rows,
        "pending": any(row["event"].seq is None for row in rows),
        "role": access.staff_role(request.user),
    }
    return render(request, "backoffice/audit.html", context)


def _query_without_page(request: HttpRequest) -> str:
    """The filter's query string, for the pager's links."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _audit_row(event: AuditEvent) -> dict[str, Any]:
    """An event as a staff member reads it: names in their language, the codes kept beside them."""
    declaration = load_declaration()
    try:
        declared = declaration.purpose(event.purpose)
        purpose = str(declared.staff_name or declared.name)
    except KeyError:
        purpose = event.purpose
    if event.actor is not None:
        actor = event.actor.get_full_name() or event.actor.get_username()
    else:
        actor = event.get_actor_kind_display()
    refusal = event.extra.get("refusal") if isinstance(event.extra, dict) else None
    return {
        "event": event,
        "actor": actor,
        "purpose": purpose,
        "fields": [str(FIELD_LABELS.get(f, f)) for f in event.fields],
        # The system's reasons are English msgids (gettext_noop): shown in the staff member's language.
        # A staff member's reason is their own words, shown exactly as written.
        "reason": event.reason if event.actor_id is not None else _(event.reason) if event.reason else "",
        "refusal": _(refusal) if isinstance(refusal, str) and refusal else "",
    }


def _readable(field: str, value: str | None) -> str | None:
    """Coded values (industry, region) shown by name in the staff member's language, code kept."""
    if value is None:
        return None
    if field == "region":
        return f"{region_name(value, get_language())} ({value})"
    if field == "industry":
        names = {i.id: str(i.name) for i in load_declaration().industries}
        return names.get(value, value)
    return value
