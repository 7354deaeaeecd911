"""The privacy officer's legal holds page (``Capability.PLACE_HOLDS``): place a hold, lift one."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from piwarden.backoffice.decorators import staff_required
from piwarden.backoffice.forms import LegalHoldForm, LiftHoldForm
from piwarden.policy.declaration import load_declaration
from piwarden.retention import access, actions


def _categories() -> list[tuple[str, str]]:
    return [(c.id, str(c.name)) for c in load_declaration().categories]


def _named(holds: Any) -> list[Any]:
    """The holds, each with its category's declared name in the active language (``category_name``)."""
    names = dict(_categories())
    listed = list(holds[:200])
    for hold in listed:
        hold.category_name = names.get(hold.category, hold.category)
    return listed


@staff_required
@require_http_methods(["GET", "POST"])
def holds(request: HttpRequest) -> HttpResponse:
    """The holds, newest first; placing one."""
    listed = access.holds_for_staff(request.user)
    form = LegalHoldForm(request.POST or None, categories=_categories())
    context: dict[str, Any] = {"form": form, "lift_form": LiftHoldForm(), "today": timezone.now().date()}
    status = HTTPStatus.OK
    if request.method == "POST" and isinstance(request.user, User):
        if form.is_valid():
            person = None
            if form.cleaned_data["person"]:
                person = access.person_for_hold(request.user, form.cleaned_data["person"])
                if person is None:
                    form.add_error("person", _("No person has this reference."))
            if not form.errors:
                try:
                    actions.place_hold(
                        person=person,
                        category=form.cleaned_data["category"] if person is None else "",
                        reason=form.cleaned_data["reason"],
                        ends_on=form.cleaned_data["ends_on"],
                        by=request.user,
                    )
                except actions.HoldRefused as exc:
                    context["refusal"] = _(str(exc))
                else:
                    return redirect(reverse("backoffice:holds") + "?done=placed")
        status = HTTPStatus.BAD_REQUEST
    done = request.GET.get("done")
    if done == "placed":
        context["done"] = _("Legal hold placed: the retention sweep keeps what it covers until its last day.")
    elif done == "lifted":
        context["done"] = _("Legal hold lifted: the next retention sweep removes what it kept past its retention.")
    context["holds"] = _named(listed)
    return render(request, "backoffice/holds.html", context, status=status)


@staff_required
@require_POST
def lift(request: HttpRequest, hold_id: int) -> HttpResponse:
    listed = access.holds_for_staff(request.user)
    form = LiftHoldForm(request.POST)
    if form.is_valid() and isinstance(request.user, User) and listed.filter(pk=hold_id).exists():
        try:
            actions.lift_hold(hold_id, reason=form.cleaned_data["reason"], by=request.user)
        except actions.HoldRefused as exc:
            refusal = _(str(exc))
        else:
            return redirect(reverse("backoffice:holds") + "?done=lifted")
    else:
        refusal = _("Give a reason of 10 to 200 characters (a case or file reference).")
    context = {
        "form": LegalHoldForm(categories=_categories()),
        "lift_form": form,
        "refusal": refusal,
        "holds": _named(listed),
        "today": timezone.now().date(),
    }
    return render(request, "backoffice/holds.html", context, status=HTTPStatus.BAD_REQUEST)
