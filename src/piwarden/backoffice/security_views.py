"""The security role's pages: the monitoring's alerts (acknowledged with a note) and the public
site's security events with identities masked.  A module of its own beside ``views.py``: the
pages share nothing with the inbox and the queues but the console's frame."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from piwarden.backoffice.decorators import staff_required
from piwarden.backoffice.listing import SwitchedList, staff_list
from piwarden.monitoring import access as monitoring
from piwarden.monitoring.actions import AcknowledgeRefused, acknowledge_alert
from piwarden.monitoring.models import NOTE_MAX_LENGTH, Alert
from piwarden.staff.permissions import staff_role


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("What you found and did (no personal data here)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=NOTE_MAX_LENGTH,
    )


class SecurityFilterForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False)
    occurred_from = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    occurred_to = forms.DateField(
        label=gettext_lazy("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind = self.fields["kind"]
        assert isinstance(kind, forms.ChoiceField)  # noqa: S101
        kind.choices = [("", gettext_lazy("Any kind")), *monitoring.KIND_CHOICES]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("occurred_from"), cleaned.get("occurred_to")
        if start and end and start > end:
            self.add_error("occurred_to", _("The end date is before the start date."))
        return cleaned

    def security_filter(self) -> monitoring.SecurityFilter:
        data = self.cleaned_data
        zone = timezone.get_current_timezone()
        start, end = data.get("occurred_from"), data.get("occurred_to")
        return monitoring.SecurityFilter(
            kind=data.get("kind") or "",
            occurred_from=datetime.combine(start, time.min, tzinfo=zone) if start else None,
            occurred_before=datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone) if end else None,
        )


class AlertList(SwitchedList[Alert]):
    template_name = "backoffice/alerts.html"
    switch = "open"
    paginate_by = monitoring.ALERT_PAGE_SIZE

    def rows(self, user: AbstractBaseUser | AnonymousUser, switched: bool) -> QuerySet[Alert]:
        return monitoring.list_alerts(user, open_only=switched)


alerts = staff_list(AlertList)


@staff_required
@require_http_methods(["GET", "POST"])
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    status = 200
    form = AcknowledgeForm(request.POST or None)
    refusal = ""
    if request.method == "POST":
        note = request.POST.get("note", "")
        try:
            acknowledge_alert(request.user, alert_id, note=note)
        except AcknowledgeRefused as exc:
            refusal, status = _(str(exc)), 400
        else:
            return redirect(reverse("backoffice:alert", args=[alert_id]) + "?done=1")
    alert = monitoring.open_alert(request.user, alert_id)
    context = {
        "role": staff_role(request.user),
        "alert": alert,
        "form": form,
        "refusal": refusal,
        "done": request.GET.get("done") == "1",
        "audit_query": _audit_query(alert),
    }
    return render(request, "backoffice/alert.html", context, status=status)


def _audit_query(alert: Any) -> str:
    """The audit log filtered to the alert's staff member and days, to read the events behind it."""
    zone = timezone.get_current_timezone()
    query = {
        "occurred_from": alert.first_at.astimezone(zone).date().isoformat(),
        "occurred_to": alert.last_at.astimezone(zone).date().isoformat(),
    }
    if alert.staff_id is not None:
        query["staff"] = str(alert.staff_id)
    return "&".join(f"{k}={v}" for k, v in query.items())


@staff_required
@require_GET
def security_events(request: HttpRequest) -> HttpResponse:
    form = SecurityFilterForm(request.GET)
    valid = form.is_valid()  # an invalid filter shows every kind, with the form's error
    narrowed = form.security_filter() if valid else monitoring.SecurityFilter()
    rows = monitoring.security_events(request.user, narrowed)
    context = {
        "role": staff_role(request.user),
        "form": form,
        "rows": rows,
        "most": monitoring.MOST_SECURITY_EVENTS,
    }
    return render(request, "backoffice/security_events.html", context, status=200 if valid else 400)
