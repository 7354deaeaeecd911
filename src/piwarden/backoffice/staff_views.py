"""The administrator's staff page, the grants page, and the enrolment page a new staff member opens."""

from __future__ import annotations

import datetime
from http import HTTPStatus
from typing import Any

import qrcode
import qrcode.image.svg
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from piwarden.backoffice.decorators import staff_required
from piwarden.backoffice.staff_forms import EnrolmentForm, GrantRequestForm, InviteStaffForm, RoleForm
from piwarden.policy.declaration import load_declaration
from piwarden.retention.rules import retention_days
from piwarden.staff import access, actions, permissions
from piwarden.staff.models import AccessGrant, Authenticator, Deactivation

DONE = {
    "invited": _("Account created. The enrolment link is on its way to the address given."),
    "suspend": _("Suspended. Their sessions have ended."),
    "reactivate": _("Reactivated."),
    "role": _("Role changed."),
    "resend": _("A new enrolment link is on its way."),
    "requested": _("Asked. A second staff member will approve or decline it."),
    "approve": _("Approved. The grant counts from now."),
    "decline": _("Declined."),
}


@staff_required
@require_http_methods(["GET", "POST"])
def staff_list(request: HttpRequest) -> HttpResponse:
    """Every staff account, with the form to create one (the person sets their own password and
    authenticator through an e-mailed link)."""
    staff = access.list_staff(request.user)  # refuses (404, recorded) any role but the administrator's
    form = InviteStaffForm(request.POST or None)
    status = HTTPStatus.OK
    refusal = ""
    if request.method == "POST":
        if form.is_valid():
            try:
                actions.invite_staff(request.user, **form.cleaned_data)
            except actions.StaffChangeRefused as refused:
                refusal, status = str(refused), HTTPStatus.BAD_REQUEST
            else:
                return redirect(reverse("backoffice:staff") + "?done=invited")
        else:
            status = HTTPStatus.BAD_REQUEST
    return render(request, "backoffice/staff.html", _staff_context(request, staff, form, refusal), status=status)


def _staff_context(request: HttpRequest, staff: Any, form: InviteStaffForm, refusal: str) -> dict[str, Any]:
    declaration = load_declaration()
    roles = {r.id: r for r in declaration.roles}
    kept = datetime.timedelta(days=retention_days(declaration.category("staff_accounts")))
    rows = []
    for member in staff:
        held = [roles[g.name] for g in member.groups.all() if g.name in roles]
        devices: list[Authenticator] = list(member.authenticator_set.all())
        deactivation: Deactivation | None = getattr(member, "deactivation", None)
        rows.append(
            {
                "user": member,
                "deactivated_at": deactivation.deactivated_at if deactivation else None,
                "deleted_on": deactivation.deactivated_at + kept if deactivation else None,
                "role": held[0] if held else None,
                "enrolled": any(d.confirmed for d in devices),
                "is_self": member.pk == request.user.pk,
                "role_form": RoleForm(initial={"role": held[0].id if held else ""}, auto_id=f"id_%s_{member.pk}"),
            }
        )
    return {
        "role": permissions.staff_role(request.user),
        "rows": rows,
        "form": form,
        "refusal": refusal,
        "done": DONE.get(request.GET.get("done", ""), ""),
    }


@staff_required
@require_POST
def staff_change(request: HttpRequest, user_id: int) -> HttpResponse:
    """Suspend, reactivate or change the role of one staff member; the write path decides."""
    change = request.POST.get("action", "")
    try:
        if change == "suspend":
            actions.suspend_staff(request.user, user_id)
        elif change == "reactivate":
            actions.reactivate_staff(request.user, user_id)
        elif change == "role":
            actions.change_staff_role(request.user, user_id, request.POST.get("role", ""))
        elif change == "resend":
            actions.resend_enrolment(request.user, user_id)
        else:
            access.list_staff(request.user)  # a wrong role hears 404 before a malformed request hears 400
            return HttpResponse(_("Unknown action."), status=HTTPStatus.BAD_REQUEST, content_type="text/plain")
    except actions.StaffChangeRefused as refused:
        staff = access.list_staff(request.user)
        context = _staff_context(request, staff, InviteStaffForm(), str(refused))
        return render(request, "backoffice/staff.html", context, status=HTTPStatus.CONFLICT)
    return redirect(reverse("backoffice:staff") + f"?done={change}")


@staff_required
@require_http_methods(["GET", "POST"])
def grants(request: HttpRequest) -> HttpResponse:
    """An administrator asks for time-limited access; a privacy officer decides others' requests."""
    shown = access.open_grants(request.user)  # refuses (404, recorded) roles that neither ask nor decide
    actions.expire_grants()  # writes down the grants that lapsed (they stopped counting already; shown so)
    role = permissions.staff_role(request.user)
    asks = permissions.role_may(role, permissions.Capability.REQUEST_GRANTS)
    form = GrantRequestForm(request.POST or None, role=role) if asks and role is not None else None
    status, refusal = HTTPStatus.OK, ""
    if request.method == "POST":
        if form is None:  # a role that decides but may not ask: the write path refuses (404, recorded)
            actions.request_grant(request.user, category="", purpose="", reason="", hours=0)
            raise Http404
        if form.is_valid():
            try:
                actions.request_grant(request.user, **form.request())
            except actions.GrantRefused as refused:
                refusal, status = str(refused), HTTPStatus.CONFLICT
            else:
                return redirect(reverse("backoffice:grants") + "?done=requested")
        else:
            status = HTTPStatus.BAD_REQUEST
    return render(request, "backoffice/grants.html", _grants_context(request, shown, form, refusal), status=status)


def _grants_context(
    request: HttpRequest, shown: access.GrantsView, form: GrantRequestForm | None, refusal: str
) -> dict[str, Any]:
    declaration = load_declaration()
    categories = {c.id: str(c.name) for c in declaration.categories}
    now = timezone.now()

    def row(grant: AccessGrant) -> dict[str, Any]:
        try:
            declared = declaration.purpose(grant.purpose)
            purpose = str(declared.staff_name or declared.name)
        except KeyError:
            purpose = grant.purpose
        active = grant.status == AccessGrant.Status.APPROVED and grant.expires_at is not None and grant.expires_at > now
        lapsed = grant.status == AccessGrant.Status.APPROVED and not active
        return {
            "grant": grant,
            "category": categories.get(grant.category, grant.category),
            "purpose": purpose,
            "active": active,
            "status": AccessGrant.Status.EXPIRED.label if lapsed else grant.get_status_display(),
        }

    return {
        "role": permissions.staff_role(request.user),
        "form": form,
        "own": [row(g) for g in shown.own],
        "to_decide": [row(g) for g in shown.to_decide],
        "decided": [row(g) for g in shown.decided],
        "decides": permissions.may(request.user, permissions.Capability.APPROVE_GRANTS),
        "refusal": refusal,
        "done": DONE.get(request.GET.get("done", ""), ""),
    }


@staff_required
@require_POST
def grant_decide(request: HttpRequest, grant_id: int) -> HttpResponse:
    decision = request.POST.get("action", "")
    try:
        if decision == "approve":
            actions.approve_grant(request.user, grant_id)
        elif decision == "decline":
            actions.decline_grant(request.user, grant_id)
        else:
            access.open_grants(request.user)
            return HttpResponse(_("Unknown action."), status=HTTPStatus.BAD_REQUEST, content_type="text/plain")
    except actions.GrantRefused as refused:
        shown = access.open_grants(request.user)
        context = _grants_context(request, shown, None, str(refused))
        return render(request, "backoffice/grants.html", context, status=HTTPStatus.CONFLICT)
    return redirect(reverse("backoffice:grants") + f"?done={decision}")


@never_cache
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest, uid: str, token: str) -> HttpResponse:
    """The e-mailed link: the new staff member scans their authenticator, sets a password, and
    proves the scan with a code.  Open to whoever holds the link, until it is used or expires."""
    try:
        user, device = actions.enrolment_account(uid, token)
    except actions.EnrolmentInvalid:
        return render(request, "backoffice/enrol.html", {"invalid": True}, status=HTTPStatus.NOT_FOUND)
    form = EnrolmentForm(request.POST or None, user=user)
    status = HTTPStatus.OK
    if request.method == "POST":
        status = HTTPStatus.BAD_REQUEST
        if form.is_valid():
            password, code = form.cleaned_data["password1"], form.cleaned_data["otp_token"]
            if actions.complete_enrolment(uid, token, password=password, code=code):
                return redirect(reverse("backoffice:login") + "?enrolled=1")
            form.add_error("otp_token", _("That code is not the one your app shows now. Scan again and retry."))
    context = {"form": form, "enrolling": user, "qr": _qr_svg(device.config_url), "otpauth": device.config_url}
    response = render(request, "backoffice/enrol.html", context, status=status)
    response["Referrer-Policy"] = "no-referrer"  # the path holds the link's token
    return response


def _qr_svg(data: str) -> SafeString:
    image = qrcode.make(
        data, image_factory=qrcode.image.svg.SvgPathImage, border=4
    )  # the quiet zone the standard asks for
    svg: str = image.to_string(encoding="unicode")
    return mark_safe(svg)  # noqa: S308  # our own SVG, no input of the visitor's
