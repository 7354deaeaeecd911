"""The staff console: sign-in with TOTP, the masked inbox, purpose-bound reveal, the audit log."""

from __future__ import annotations

from datetime import date, timedelta
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext_noop
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from piwarden.audit import proof
from piwarden.audit.models import AuditEvent
from piwarden.backoffice.decorators import staff_required
from piwarden.backoffice.forms import (
    AccessDecisionForm,
    AssignForm,
    AuditFilterForm,
    CompleteForm,
    ConsoleLanguageForm,
    ExtendForm,
    InboxFilterForm,
    RefuseForm,
    RejectRefusalForm,
    RevealForm,
    RightsQueueFilterForm,
    RightsRevealForm,
    StaffLoginForm,
    TrainingForm,
)
from piwarden.backoffice.listing import query_without_page
from piwarden.backoffice.staff_forms import GrantRequestForm
from piwarden.children.access import guardian_has_consented
from piwarden.children.actions import ChildProtectionRefused, flag_child_data
from piwarden.inquiries import access as inquiry_access
from piwarden.inquiries.actions import AssignRefused, assign_inquiry
from piwarden.inquiries.models import CATEGORY as CONSULTATION
from piwarden.inquiries.models import FIELD_LABELS, PERSONAL_FIELDS, Inquiry
from piwarden.policy import trace
from piwarden.policy.declaration import Role, load_declaration, region_name
from piwarden.policy.promises import PromiseError
from piwarden.rights import access as rights_access
from piwarden.rights import actions as rights_actions
from piwarden.rights import clock, fulfil
from piwarden.rights.models import UNRECOGNISED_GROUNDS, ActingAs, RequestKind, RightsRequest
from piwarden.staff import access, devices, permissions, reviews, training
from piwarden.staff import actions as staff_actions
from piwarden.staff.actions import (
    GrantRefused,
    record_failed_sign_in,
    request_child_ticket,
    set_console_language,
    sign_in_staff,
    sign_out_staff,
)
from piwarden.staff.models import TrainingRecord, preferred_language
from piwarden.staff.permissions import Capability


@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    form = StaffLoginForm(request, data=request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            signed_in = sign_in_staff(request, form.get_user())
            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = ""
            response = redirect(target or "backoffice:inbox")
            if signed_in.device_token is not None:
                devices.set_cookie(response, signed_in.device_token)
            return response
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
    context: dict[str, Any] = {"role": permissions.staff_role(request.user), "saved": request.GET.get("saved") == "1"}
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
    role = permissions.staff_role(request.user)
    context: dict[str, Any] = {
        "role": role,
        "can_see_inquiries": permissions.may(request.user, Capability.SEE_INQUIRIES),
        "sees_all": permissions.may(request.user, Capability.SEE_ALL_INQUIRIES),
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
    context["query"] = query_without_page(request)
    return render(request, "backoffice/inbox.html", context)


@staff_required
@require_http_methods(["GET", "POST"])
def inquiry_detail(request: HttpRequest, reference: str) -> HttpResponse:
    inquiry = inquiry_access.access_inquiry_for_staff(request.user, reference)
    role = permissions.staff_role(request.user)
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
    return _inquiry_page(request, inquiry, context, revealed, status)


def _inquiry_page(
    request: HttpRequest, inquiry: Inquiry, context: dict[str, Any], revealed: dict[str, str | None], status: int
) -> HttpResponse:
    context["rows"] = [
        {"field": f, "label": FIELD_LABELS[f], "value": _readable(f, revealed.get(f))} for f in PERSONAL_FIELDS
    ]
    context["revealed_any"] = bool(revealed)
    if permissions.may(request.user, Capability.ASSIGN_INQUIRIES):
        context.setdefault(
            "assign_form",
            AssignForm(
                initial={"assignee": inquiry.assigned_to_id},
                handlers=permissions.accounts_that_may(Capability.SEE_INQUIRIES),
            ),
        )
    context["assigned"] = request.GET.get("assigned") == "1"
    context["child"] = permissions.is_childs(inquiry)
    context["child_consented"] = guardian_has_consented(inquiry.person)
    role = permissions.staff_role(request.user)
    if context["child"] and role is not None:
        context.setdefault("ticket_form", _ticket_form(role))
        context["ticket_asked"] = request.GET.get("ticket") == "1"
    return render(request, "backoffice/inquiry.html", context, status=status)


@staff_required
@require_POST
def inquiry_flag_child(request: HttpRequest, reference: str) -> HttpResponse:
    """Flag the request as a child's sent without a guardian's consent: its person's data is erased."""
    inquiry = inquiry_access.access_inquiry_for_staff(request.user, reference)
    role = permissions.staff_role(request.user)
    if role is None:  # staff_required makes this unreachable
        raise Http404
    context: dict[str, Any] = {"inquiry": inquiry, "form": RevealForm(role=role), "role": role}
    if request.POST.get("confirm") != "yes":
        context["refusal"] = _("Tick the box to confirm that this is a child's data sent without a guardian's consent.")
        return _inquiry_page(request, inquiry, context, {}, HTTPStatus.BAD_REQUEST)
    try:
        flag_child_data(request.user, inquiry.person, about=inquiry.reference)
    except ChildProtectionRefused as exc:
        context["refusal"] = str(exc)
        return _inquiry_page(request, inquiry, context, {}, exc.status)
    return redirect(reverse("backoffice:inbox") + "?flagged=1")


@staff_required
@require_POST
def inquiry_child_ticket(request: HttpRequest, reference: str) -> HttpResponse:
    """Ask for an approval ticket to reveal this child's request (CHD-03); a second person decides it
    on the grants page."""
    inquiry = inquiry_access.access_inquiry_for_staff(request.user, reference)
    role = permissions.staff_role(request.user)
    if role is None or not permissions.is_childs(inquiry):  # staff_required: no role unreachable
        raise Http404
    form = _ticket_form(role, request.POST)
    context: dict[str, Any] = {"inquiry": inquiry, "form": RevealForm(role=role), "role": role, "ticket_form": form}
    if not form.is_valid():
        return _inquiry_page(request, inquiry, context, {}, HTTPStatus.BAD_REQUEST)
    try:
        request_child_ticket(request.user, inquiry.person, **form.request())
    except GrantRefused as refused:
        context["refusal"] = str(refused)
        return _inquiry_page(request, inquiry, context, {}, HTTPStatus.CONFLICT)
    return redirect(reverse("backoffice:inquiry", args=[inquiry.reference]) + "?ticket=1")


def _ticket_form(role: Role, data: Any = None) -> GrantRequestForm:
    """What a child's ticket may be asked for: the consultation details, for the purposes the role reveals them."""
    pairs = {CONSULTATION: permissions.reveal_purposes(role, [CONSULTATION])}
    return GrantRequestForm(data, role=role, pairs=pairs, prefix="ticket")  # beside the reveal form: its own ids


@staff_required
@require_POST
def inquiry_assign(request: HttpRequest, reference: str) -> HttpResponse:
    """Give the request to a staff member who answers consultation requests (the privacy officer does)."""
    inquiry = inquiry_access.access_inquiry_for_staff(request.user, reference)
    role = permissions.staff_role(request.user)
    if role is None:  # staff_required makes this unreachable
        raise Http404
    form = AssignForm(request.POST, handlers=permissions.accounts_that_may(Capability.SEE_INQUIRIES))
    context: dict[str, Any] = {"inquiry": inquiry, "form": RevealForm(role=role), "role": role, "assign_form": form}
    try:
        # The write path decides (and records) a role's refusal first, whatever was posted.
        assign_inquiry(request.user, reference, to=form.cleaned_data["assignee"] if form.is_valid() else None)
    except AssignRefused as exc:
        context["refusal"] = str(exc)
        return _inquiry_page(request, inquiry, context, {}, exc.status)
    return redirect(reverse("backoffice:inquiry", args=[reference]) + "?assigned=1")


@staff_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    requested = request.GET.get("page") or "1"
    form = AuditFilterForm(request.GET)
    valid = form.is_valid()  # an invalid filter shows the whole log, with the form's error
    events = access.open_audit_log(request.user, page=requested, narrowed=form.audit_filter() if valid else None)
    page = Paginator(events, access.AUDIT_PAGE_SIZE).get_page(requested)
    rows = [_audit_row(event) for event in page]
    context = {
        "page": page,
        "rows": rows,
        "form": form,
        "query": query_without_page(request),
        "pending": any(row["event"].seq is None for row in rows),
        "role": permissions.staff_role(request.user),
    }
    return render(request, "backoffice/audit.html", context, status=200 if valid else 400)


@staff_required
@never_cache
@require_GET
def audit_export(request: HttpRequest) -> HttpResponse:
    """The events the filter selects, as a JSON download with the proof that they are the log's
    (``piwarden.audit.proof``; checked with ``piwarden audit check-export``)."""
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return audit_log(request)
    narrowed = form.audit_filter()
    try:
        events = access.export_audit_log(request.user, narrowed)
    except access.TooManyToExport:
        message = _("More than %(most)s entries match: narrow the filter (a person, a staff member, an event, days).")
        return HttpResponse(message % {"most": access.MAX_EXPORT}, status=400, content_type="text/plain; charset=utf-8")
    except access.ChildrenInBulkExport:
        message = _(
            "These entries include some about a child's data, which is not exported in bulk (privacy policy, "
            "section 8): narrow the filter to one person, or to days without them. This refusal is recorded."
        )
        return HttpResponse(message, status=403, content_type="text/plain; charset=utf-8")
    body = proof.dumps(proof.export(events, narrowed.describe()))
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.json"'
    return response


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


# --- rights-queue: the rights requests (issue 7 §3) ---------------------------------------


@staff_required
@require_GET
def rights_queue(request: HttpRequest) -> HttpResponse:
    """Verified requests, the earliest answer due first, with working days left; nothing decrypted."""
    role = permissions.staff_role(request.user)
    form = RightsQueueFilterForm(request.GET)
    context: dict[str, Any] = {"role": role, "form": form}
    if not form.is_valid():
        return render(request, "backoffice/rights_queue.html", context, status=400)
    rows = rights_access.list_requests_for_staff(request.user, form.queue_filter())
    page = Paginator(rows, rights_access.STAFF_PAGE_SIZE).get_page(request.GET.get("page"))
    calendar, today = clock.load_calendar(), clock.day_of_receipt(timezone.now())
    context["page"] = page
    context["rows"] = [_queue_row(r, calendar, today) for r in page]
    context["query"] = query_without_page(request)
    return render(request, "backoffice/rights_queue.html", context)


def _queue_row(row: RightsRequest, calendar: clock.WorkingCalendar, today: date) -> dict[str, Any]:
    due = row.answer_due_on
    left = clock.working_days_left(due, today, calendar) if due is not None and row.is_open else None
    return {
        "request": row,
        "due": due,
        "left": left,
        "overdue": due is not None and row.is_open and today > due,
        "escalated": row.escalated_at is not None and row.is_open,
        "awaits_approval": row.awaits_approval,
    }


RIGHTS_ACTIONS = ("assign", "start", "extend", "refuse", "approve", "reject", "complete", "reveal")


@staff_required
@require_http_methods(["GET", "POST"])
def rights_request_detail(request: HttpRequest, reference: str) -> HttpResponse:
    """One request: its dates, its timeline and the action forms; what the person wrote stays masked."""
    found = rights_access.access_request_for_staff(request.user, reference)
    role = permissions.staff_role(request.user)
    handlers = permissions.accounts_that_may(Capability.HANDLE_RIGHTS)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    bound = request.POST if request.method == "POST" else None
    forms_ = {
        "assign": AssignForm(bound if action == "assign" else None, handlers=handlers),
        "extend": ExtendForm(bound if action == "extend" else None),
        "refuse": RefuseForm(bound if action == "refuse" else None),
        "reject": RejectRefusalForm(bound if action == "reject" else None),
        "complete": CompleteForm(bound if action == "complete" else None, corrections=_corrections(found)),
        "reveal": RightsRevealForm(bound if action == "reveal" else None),
    }
    context: dict[str, Any] = {"role": role, "forms": forms_, "revealed": {}}
    status = 200
    if request.method == "POST":
        try:
            revealed = _run_action(request, found, action, forms_)
        except rights_access.StaffRefused as exc:
            context["refusal"], status = str(exc), exc.status
        else:
            if action == "reveal":
                context["revealed"] = revealed
                context["done"] = _("Revealed. This access was recorded in the audit log.")
            else:
                return redirect(reverse("backoffice:rights_request", args=[found.reference]) + f"?done={action}")
        found = rights_access.access_request_for_staff(request.user, reference)
    done = request.GET.get("done", "")
    if done in RIGHTS_ACTIONS:
        context["done"] = _("Done. The step is recorded and, where the person is told, e-mailed.")
    steps = rights_access.timeline_for_staff(request.user, found)
    due = found.answer_due_on
    today = clock.day_of_receipt(timezone.now())
    context.update(
        {
            "r": found,
            "steps": steps,
            "masked_rows": [
                {
                    "field": f,
                    "label": getattr(RightsRequest._meta.get_field(f), "verbose_name", f),
                    "shown": f in context["revealed"],
                    "value": context["revealed"].get(f),
                }
                for f in rights_access.REVEALABLE
                if _holds(found, f)
            ],
            "due": due,
            "left": clock.working_days_left(due, today) if due is not None and found.is_open else None,
            "overdue": due is not None and found.is_open and today > due,
            "may_extend": found.is_open
            and found.extended_due_on is None
            and found.due_on is not None
            and today <= found.due_on,
            "extension_days": rights_actions.EXTENSION_WORKING_DAYS,
            "unrecognised": sorted(str(g.label) for g in UNRECOGNISED_GROUNDS),
            "execution_note": fulfil.describe(found),
        }
    )
    return render(request, "backoffice/rights_request.html", context, status=status)


def _holds(found: RightsRequest, field: str) -> bool:
    """Whether the request's page lists this sealed field: a proposal's reasons while it awaits a
    decision, a rejection's note once there is one (read without decrypting either)."""
    if field == "proposed_reasons":
        return found.awaits_approval
    if field == "rejection_note":
        return found.refusal_rejected_at is not None
    return True


def _corrections(found: RightsRequest) -> list[tuple[str, str]]:
    """The fields staff may confirm new values for, on a correction request or one about someone else
    (a deceased person's or a guardian's child's, which may ask for a correction of that record)."""
    if (
        found.kind not in (RequestKind.CORRECTION, RequestKind.DECEASED_RELATIVE)
        and found.acting_as != ActingAs.GUARDIAN
    ):
        return []
    return fulfil.correctable_fields()


def _run_action(request: HttpRequest, found: RightsRequest, action: str, forms_: dict[str, Any]) -> dict[str, Any]:
    """Run the posted action; the write path repeats every check (role, state, text) itself."""
    user, reference = request.user, found.reference
    if action not in RIGHTS_ACTIONS:
        raise rights_access.StaffRefused(_("Unknown action."), status=400)
    form: Any = forms_.get(action)
    if form is not None and not form.is_valid():
        # The write path decides and records role refusals; a form error is bad input only.
        rights_access.require_handler(user, action, reference)
        raise rights_access.StaffRefused(_("Check the form: some of it is missing or not right."), status=400)
    if action == "assign":
        rights_actions.assign_request(user, reference, to=form.cleaned_data["assignee"])
    elif action == "start":
        rights_actions.start_request(user, reference)
    elif action == "extend":
        rights_actions.extend_request(user, reference, reason=form.cleaned_data["reason"])
    elif action == "refuse":
        rights_actions.refuse_request(
            user, reference, ground=form.cleaned_data["ground"], reasons=form.cleaned_data["reasons"]
        )
    elif action == "approve":
        rights_actions.approve_refusal(user, reference)
    elif action == "reject":
        rights_actions.reject_refusal(user, reference, note=form.cleaned_data["note"])
    elif action == "complete":
        given = fulfil.Fulfilment(
            corrections=form.corrections(),
            purpose=form.cleaned_data.get("purpose") or "",
            deceased_checks=form.deceased_checks(),
            subject_right=form.cleaned_data.get("subject_right") or "",
            subject_email=form.cleaned_data.get("subject_email") or "",
        )
        rights_actions.complete_request(user, reference, result=form.cleaned_data["result"], fulfilment=given)
    else:
        return rights_access.reveal_request_fields(
            user, found, fields=form.cleaned_data["field_names"], reason=form.cleaned_data["reason"]
        )
    return {}


@staff_required
@require_GET
def promises(request: HttpRequest) -> HttpResponse:
    """The privacy texts' promises traced to duties, code, tests and the last run's results."""
    role = permissions.staff_role(request.user)
    if not permissions.role_may(role, permissions.Capability.TRACE_PROMISES):
        access.refuse_opening(request.user, "promises", gettext_noop("the role may not read the promise trace"))
    language = "en" if get_language() == "en" else "zh-hans"
    try:
        report, unreadable = trace.read_report(trace.default_report_path()), ""
    except PromiseError as exc:  # shown, not a server error: every promise then reads as unkept
        report, unreadable = None, str(exc)
    found = trace.trace(language, report)
    return render(
        request,
        "backoffice/promises.html",
        {"role": role, "trace": found, "kept": len(found.promises) - len(found.unkept), "unreadable": unreadable},
    )


# --- access reviews (issue 8 §3) ------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "POST"])
def access_reviews(request: HttpRequest) -> HttpResponse:
    """The campaigns, newest first; a reviewer may open one when none is open."""
    found = access.list_reviews_for_staff(request.user)
    context: dict[str, Any] = {"role": permissions.staff_role(request.user), "reviews": found}
    if request.method == "POST" and isinstance(request.user, User):
        try:
            opened = staff_actions.open_access_review(by=request.user)
        except staff_actions.ReviewRefused as exc:
            context["refusal"] = str(exc)
            return render(request, "backoffice/access_reviews.html", context, status=409)
        return redirect("backoffice:access_review", review_id=opened.pk)
    context["open_exists"] = found.filter(completed_at__isnull=True).exists()
    return render(request, "backoffice/access_reviews.html", context)


@staff_required
@require_http_methods(["GET", "POST"])
def access_review(request: HttpRequest, review_id: int) -> HttpResponse:
    """One campaign's lines: roles, grants, reveal counts; confirm or revoke each (not one's own)."""
    review = access.access_review_for_staff(request.user, review_id)
    context: dict[str, Any] = {"role": permissions.staff_role(request.user), "review": review}
    status = HTTPStatus.OK
    if request.method == "POST" and isinstance(request.user, User):
        form = AccessDecisionForm(request.POST)
        if not form.is_valid():
            context["refusal"], status = _("Choose confirm or revoke for one line."), HTTPStatus.BAD_REQUEST
        else:
            line_id = access.access_review_line_for_staff(request.user, review, form.cleaned_data["line"])
            try:
                staff_actions.decide_access(
                    line_id, reviewer=request.user, confirm=form.cleaned_data["decision"] == "confirm"
                )
            except staff_actions.ReviewRefused as exc:
                context["refusal"], status = str(exc), HTTPStatus.CONFLICT
            else:
                return redirect(reverse("backoffice:access_review", args=[review.pk]) + "?done=1")
        review.refresh_from_db()
    if request.GET.get("done") == "1":
        context["done"] = _("Recorded. A revoked role is removed at once.")
    context["lines"] = [
        _review_row(line, request.user)
        for line in review.lines.select_related("staff", "decided_by").order_by("staff__username")
    ]
    context["pending"] = reviews.pending(review)
    if review.is_complete:
        context["verification"] = reviews.verify_review(review)
    return render(request, "backoffice/access_review.html", context, status=status)


def _review_row(line: Any, reviewer: Any) -> dict[str, Any]:
    """A line as the page shows it: declared names for roles, categories and purposes."""
    declaration = load_declaration()
    roles = {r.id: r.name for r in declaration.roles}
    categories = {c.id: c.name for c in declaration.categories}
    purposes = {p.id: p.name for p in declaration.purposes}
    return {
        "line": line,
        "own": line.staff_id == reviewer.pk,
        "roles": [roles.get(r, r) for r in line.roles],
        "reveals": [
            {
                **r,
                "category_name": categories.get(r["category"], r["category"]),
                "purpose_name": purposes.get(r["purpose"], r["purpose"]),
            }
            for r in line.reveals
        ],
    }


@staff_required
@require_GET
def access_review_export(request: HttpRequest, review_id: int) -> HttpResponse:
    """The signed review as a file (the document exactly as signed, and its signature); audited."""
    review = access.access_review_for_staff(request.user, review_id)
    if not review.signature:
        raise Http404
    staff_actions.record_review_export(review, by=access.actor_of(request.user))
    response = JsonResponse(reviews.export_of(review), json_dumps_params={"ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="access-review-{review.pk}.json"'
    return response


# --- training (issue 8 §4) ------------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "POST"])
def training_page(request: HttpRequest) -> HttpResponse:
    """Record a completed course (for someone else) and see whose attestation is missing or due."""
    staff = access.training_staff_for_staff(request.user)
    others = staff.exclude(pk=request.user.pk or 0)
    form = TrainingForm(request.POST or None, staff=others)
    context: dict[str, Any] = {
        "role": permissions.staff_role(request.user),
        "form": form,
        "months": settings.PIWARDEN_TRAINING_MONTHS,
    }
    status = HTTPStatus.OK
    if request.method == "POST" and isinstance(request.user, User):
        if form.is_valid():
            try:
                staff_actions.record_training(
                    form.cleaned_data["staff"],
                    course=form.cleaned_data["course"],
                    completed_on=form.cleaned_data["completed_on"],
                    recorded_by=request.user,
                )
            except staff_actions.ReviewRefused as exc:
                context["refusal"], status = str(exc), HTTPStatus.BAD_REQUEST
            else:
                return redirect(reverse("backoffice:training") + "?done=1")
        else:
            status = HTTPStatus.BAD_REQUEST
    if request.GET.get("done") == "1":
        context["done"] = _("Training recorded.")
    context["rows"] = _training_rows(staff)
    return render(request, "backoffice/training.html", context, status=status)


def _training_rows(staff: Any) -> list[dict[str, Any]]:
    declared = {r.id: r for r in load_declaration().roles}
    today = training.today()
    soon = today + timedelta(days=settings.PIWARDEN_TRAINING_NOTICE_DAYS)
    latest: dict[int, TrainingRecord] = {}
    for found in TrainingRecord.objects.filter(staff__in=staff).order_by("staff_id", "-completed_on", "-id"):
        latest.setdefault(found.staff_id, found)
    rows = []
    for user in staff:
        roles = [declared[g.name] for g in user.groups.all() if g.name in declared]
        needed = any(training.needs_training(r) for r in roles)
        record: TrainingRecord | None = latest.get(user.pk)
        ends = training.expires_on(record.completed_on) if record is not None else None
        if not needed:
            state = "not_needed"
        elif ends is None:
            state = "missing"
        elif today >= ends:
            state = "expired"
        elif ends <= soon:
            state = "due_soon"
        else:
            state = "current"
        rows.append({"user": user, "roles": roles, "record": record, "expires_on": ends, "state": state})
    order = {"expired": 0, "missing": 1, "due_soon": 2, "current": 3, "not_needed": 4}
    return sorted(rows, key=lambda row: (order[row["state"]], row["user"].username))
