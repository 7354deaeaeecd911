"""The security role's review of refusals by the public site's risk rules (PIPL 24): the list, and
one refusal with why its rule fired, the client masked, the person's words, and the decision
(lift or uphold, with a reason the person reads)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from piwarden.backoffice.decorators import staff_required
from piwarden.backoffice.listing import SwitchedList, staff_list
from piwarden.security import access
from piwarden.security.actions import ReviewRefused, decide_refusal
from piwarden.security.models import REASON_MAX_LENGTH, Refusal, ReviewOutcome
from piwarden.staff.permissions import staff_role


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        label=gettext_lazy("Decision"), choices=ReviewOutcome.choices, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason (the person reads it; no personal data)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=REASON_MAX_LENGTH,
    )


class RefusalList(SwitchedList[Refusal]):
    template_name = "backoffice/refusals.html"
    switch = "awaiting"
    paginate_by = access.PAGE_SIZE

    def rows(self, user: AbstractBaseUser | AnonymousUser, switched: bool) -> QuerySet[Refusal]:
        return access.list_refusals(user, awaiting=switched)


refusals = staff_list(RefusalList)


@staff_required
@require_http_methods(["GET", "POST"])
def refusal_detail(request: HttpRequest, reference: str) -> HttpResponse:
    status = 200
    form = DecisionForm(request.POST or None)
    refused = ""
    if request.method == "POST":
        try:
            decide_refusal(
                request.user,
                reference,
                decision=request.POST.get("decision", ""),
                reason=request.POST.get("reason", ""),
            )
        except ReviewRefused as exc:
            refused, status = _(str(exc)), 400
        else:
            return redirect(reverse("backoffice:refusal", args=[reference]) + "?done=1")
    view = access.open_refusal(request.user, reference)
    context = {
        "role": staff_role(request.user),
        "view": view,
        "refusal": view.refusal,
        "form": form,
        "refused": refused,
        "done": request.GET.get("done") == "1",
    }
    return render(request, "backoffice/refusal.html", context, status=status)
