"""The incident register's pages (policy §五.6): the register, one incident and its steps, the
report to the regulator (a form, a printable page and a JSON export) and the notice to the persons
affected.  Each view: the role is checked first (an audited 404 for a role that does not keep the
register), then the form, then one write path of :mod:`piwarden.incidents.actions`."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_GET, require_http_methods

from piwarden.backoffice.decorators import staff_required
from piwarden.incidents import access
from piwarden.incidents import actions as incident_actions
from piwarden.incidents.actions import Details, IncidentRefused
from piwarden.incidents.forms import (
    AudienceForm,
    IncidentForm,
    JustificationForm,
    NoticeForm,
    ReportForm,
)
from piwarden.incidents.models import REPORTABLE, Incident, Notice, State
from piwarden.people import contacts, guardians
from piwarden.policy.declaration import load_declaration
from piwarden.staff.permissions import staff_role

DONE = {
    "recorded": gettext_noop("Incident recorded."),
    "updated": gettext_noop("Details saved."),
    "activate_plan": gettext_noop("Emergency plan activated."),
    "contain": gettext_noop("Incident marked as contained."),
    "reported": gettext_noop("Report to the regulator filed."),
    "publish": gettext_noop("Public notice published."),
    "close": gettext_noop("Incident closed."),
    "saved": gettext_noop("Notice saved."),
    "queued": gettext_noop("Notices queued: each person is e-mailed once."),
    "declined": gettext_noop("Decision not to notify recorded."),
}
STEPS = {
    "activate_plan": incident_actions.activate_plan,
    "contain": incident_actions.contain_incident,
    "publish": incident_actions.publish_notice,
    "close": incident_actions.close_incident,
}


def _refusal(exc: IncidentRefused) -> str:
    return _(exc.message) % exc.params if exc.params else _(exc.message)


def _done(request: HttpRequest) -> str:
    key = request.GET.get("done", "")
    return _(DONE[key]) if key in DONE else ""


def _category_names(ids: list[str]) -> list[str]:
    names = {c.id: str(c.name) for c in load_declaration().categories}
    return [names.get(i, i) for i in ids]


@staff_required
@require_http_methods(["GET", "POST"])
def incidents(request: HttpRequest) -> HttpResponse:
    rows = access.list_incidents(request.user)
    form = IncidentForm(
        request.POST if request.method == "POST" else None,
        initial={"detected_at": timezone.localtime().replace(second=0, microsecond=0)},
    )
    status, refusal = HTTPStatus.OK, ""
    if request.method == "POST":
        if form.is_valid():
            incident = incident_actions.record_incident(request.user, Details.of(form.cleaned_data))
            return redirect(reverse("backoffice:incident", args=[incident.slug]) + "?done=recorded")
        status = HTTPStatus.BAD_REQUEST
    context = {"role": staff_role(request.user), "rows": rows[: access.PAGE_SIZE], "form": form, "refusal": refusal}
    return render(request, "backoffice/incidents.html", context, status=status)


@staff_required
@require_http_methods(["GET", "POST"])
def incident_detail(request: HttpRequest, slug: str) -> HttpResponse:
    incident = access.open_incident(request.user, slug)
    status, refusal = HTTPStatus.OK, ""
    form = IncidentForm(initial=_initial(incident))
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "update":
                form = IncidentForm(request.POST)
                if not form.is_valid():
                    raise _Invalid
                incident_actions.update_incident(request.user, slug, Details.of(form.cleaned_data))
                return redirect(reverse("backoffice:incident", args=[slug]) + "?done=updated")
            if action not in STEPS:
                refusal = _("Choose one of the steps on this page.")
                raise _Invalid
            STEPS[action](request.user, slug)
            return redirect(reverse("backoffice:incident", args=[slug]) + f"?done={action}")
        except IncidentRefused as exc:
            refusal = _refusal(exc)
            status = HTTPStatus.BAD_REQUEST
        except _Invalid:
            status = HTTPStatus.BAD_REQUEST
        incident.refresh_from_db()
    context = {
        **_incident_context(request, incident),
        "form": form,
        "refusal": refusal,
        "done": _done(request),
    }
    return render(request, "backoffice/incident.html", context, status=status)


class _Invalid(Exception):
    """The form was invalid: its errors are on the page."""


def _initial(incident: Incident) -> dict[str, Any]:
    return {
        "title": incident.title,
        "kind": incident.kind,
        "grade": incident.grade,
        "cii": incident.cii,
        "detected_at": timezone.localtime(incident.detected_at),
        "categories": incident.categories,
        "affected_persons": incident.affected_persons,
        "minors_affected": incident.minors_affected,
        "cause": incident.cause,
        "measures": incident.measures,
    }


def _incident_context(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    notices = Notice.objects.filter(incident=incident)
    counts = {
        "queued": notices.count(),
        "sent": notices.filter(outcome="sent").count(),
        "pending": notices.filter(outcome="").count(),
        "failed": notices.exclude(outcome__in=("", "sent")).count(),
    }
    return {
        "role": staff_role(request.user),
        "incident": incident,
        "categories": _category_names(incident.categories),
        "reportable": incident.grade in REPORTABLE,
        "states": list(State),
        "step": incident.step,
        "counts": counts,
        "now": timezone.now(),
        "guardian_source": guardians.source() is not None,
    }


@staff_required
@require_http_methods(["GET", "POST"])
def incident_report(request: HttpRequest, slug: str) -> HttpResponse:
    incident = access.open_incident(request.user, slug, page="incident report")
    form = ReportForm(request.POST if request.method == "POST" else None, initial=incident.report or None)
    status, refusal = HTTPStatus.OK, ""
    if request.method == "POST":
        if form.is_valid():
            report = {key: form.cleaned_data[key] for key in ReportForm.REPORT_FIELDS}
            try:
                incident_actions.report_incident(
                    request.user,
                    slug,
                    report,
                    authority_requires_notice=form.cleaned_data["authority_requires_notice"],
                )
            except IncidentRefused as exc:
                refusal = _refusal(exc)
            else:
                return redirect(reverse("backoffice:incident", args=[slug]) + "?done=reported")
        status = HTTPStatus.BAD_REQUEST
    context = {**_incident_context(request, incident), "form": form, "refusal": refusal}
    return render(request, "backoffice/incident_report.html", context, status=status)


def _report_document(incident: Incident) -> dict[str, Any]:
    """The report as filed, with the register's facts the measures ask for (unit, time, type)."""
    declaration = load_declaration()
    return {
        "unit": str(declaration.controller.name),
        "incident": incident.slug,
        "title": incident.title,
        "type": incident.get_kind_display(),
        "grade": incident.get_grade_display(),
        "critical_information_infrastructure": incident.cii,
        "detected_at": timezone.localtime(incident.detected_at).isoformat(),
        "report_due_at": timezone.localtime(incident.report_due_at).isoformat() if incident.report_due_at else None,
        "reported_at": timezone.localtime(incident.reported_at).isoformat() if incident.reported_at else None,
        "categories": _category_names(incident.categories),
        "affected_persons": incident.affected_persons,
        "minors_affected": incident.minors_affected,
        "cause": incident.cause,
        "measures": incident.measures,
        **{key: incident.report.get(key, "") for key in ReportForm.REPORT_FIELDS},
        "contact": {"hotline": declaration.controller.hotline, "email": declaration.controller.email},
    }


@staff_required
@require_GET
def incident_report_print(request: HttpRequest, slug: str) -> HttpResponse:
    incident = access.open_incident(request.user, slug, page="incident report")
    labels = {name: ReportForm.base_fields[name].label for name in ReportForm.REPORT_FIELDS}
    context = {
        **_incident_context(request, incident),
        "document": _report_document(incident),
        "rows": [(labels[k], incident.report.get(k, "")) for k in ReportForm.REPORT_FIELDS],
    }
    return render(request, "backoffice/incident_report_print.html", context)


@staff_required
@require_GET
def incident_report_export(request: HttpRequest, slug: str) -> HttpResponse:
    incident = access.open_incident(request.user, slug, page="incident report")
    body = json.dumps(_report_document(incident), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="incident-{incident.slug}-report.json"'
    return response


@staff_required
@require_http_methods(["GET", "POST"])
def incident_notice(request: HttpRequest, slug: str) -> HttpResponse:
    incident = access.open_incident(request.user, slug, page="incident notice")
    action = request.POST.get("action", "") if request.method == "POST" else ""
    texts = NoticeForm(request.POST if action == "save" else None, initial=NoticeForm.initial_from(incident.notice))
    audience = AudienceForm(request.POST if action == "send" else None, initial={"by_categories": True})
    justification = JustificationForm(request.POST if action == "decline" else None)
    status, refusal = HTTPStatus.OK, ""
    if request.method == "POST":
        bound = {"save": texts, "send": audience, "decline": justification}.get(action)
        if bound is None:
            refusal = _("Choose one of the steps on this page.")
        elif bound.is_valid():
            try:
                if action == "save":
                    incident_actions.save_notice(request.user, slug, texts.texts())
                    done = "saved"
                elif action == "send":
                    incident_actions.notify_persons(
                        request.user,
                        slug,
                        by_categories=audience.cleaned_data["by_categories"],
                        addresses=audience.cleaned_data["addresses"],
                    )
                    done = "queued"
                else:
                    incident_actions.decline_notice(request.user, slug, justification.cleaned_data["justification"])
                    done = "declined"
            except IncidentRefused as exc:
                refusal = _refusal(exc)
            else:
                return redirect(reverse("backoffice:incident_notice", args=[slug]) + f"?done={done}")
        status = HTTPStatus.BAD_REQUEST
        incident.refresh_from_db()
    context = {
        **_incident_context(request, incident),
        "texts": texts,
        "audience": audience,
        "justification": justification,
        "refusal": refusal,
        "done": _done(request),
        "person_categories": _category_names([c for c in incident.categories if c in contacts.person_categories()]),
    }
    return render(request, "backoffice/incident_notice.html", context, status=status)
