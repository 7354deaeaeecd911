from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AbstractBaseUser, User
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from piwarden.audit.models import EventType
from piwarden.inquiries.access import MAX_REASON_LENGTH, MIN_REASON_LENGTH, InboxFilter, inquiry_categories
from piwarden.inquiries.models import FIELD_LABELS, PERSONAL_FIELDS, InquiryStatus
from piwarden.policy.declaration import LegalBasis, Role, load_declaration
from piwarden.rights import fulfil
from piwarden.rights.access import REVEALABLE, QueueFilter
from piwarden.rights.models import RefusalGround, RequestKind, RequestStatus, RightsRequest
from piwarden.staff import permissions
from piwarden.staff.access import AuditFilter
from piwarden.staff.models import Authenticator


class _CodeInput(forms.TextInput):
    """Never echoes a code back: after a failure it is spent or wrong, and the page must not differ."""

    def format_value(self, value: Any) -> str | None:
        return None


class StaffLoginForm(AuthenticationForm):
    """Username, password and the authenticator's current code, in one step.

    Every failure gets the same answer (message and status): a wrong password, a right password
    with a wrong, replayed or throttled code, an account without an authenticator.  Telling them
    apart would tell an attacker that the password was right.  A wrong code counts towards
    django-axes' lockout exactly as a wrong password does (the same ``user_login_failed`` signal
    Django sends for a wrong password), and a locked-out account is not even asked for its code.
    """

    otp_token = forms.CharField(
        label=_("Authenticator code"),
        max_length=6,
        widget=_CodeInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]{6}"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _(
            "The username, password or authenticator code is not right. "
            "Check them and try again; each code works once, within its 30 seconds."
        ),
    }

    #: Which step failed, for the audit log only ("incomplete", "password" or "code"); never shown.
    failed_step = ""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        token = self.cleaned_data.get("otp_token")
        if not (username and password and token):
            # The field errors say what is missing.  The password is not checked without a code:
            # "code required" after a right password only would be the same oracle again.
            self.failed_step = "incomplete"
            return self.cleaned_data
        user = authenticate(self.request, username=username, password=password)
        if user is None:  # wrong password, unknown name, inactive, or locked out by axes
            self.failed_step = "password"
            raise self.get_invalid_login_error()
        device = self._accepted_authenticator(user, token)
        if device is None:
            self.failed_step = "code"
            user_login_failed.send(sender=__name__, credentials={"username": username}, request=self.request)
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(user)
        user.otp_device = device  # type: ignore[attr-defined]  # django-otp marks the session verified on login()
        self.user_cache = user
        return self.cleaned_data

    @staticmethod
    def _accepted_authenticator(user: AbstractBaseUser, token: str) -> Authenticator | None:
        # Locked for the check, so that two requests cannot both spend the same code.
        with transaction.atomic():
            device: Authenticator | None = (
                Authenticator.objects.select_for_update().filter(user_id=user.pk, confirmed=True).order_by("pk").first()
            )
            if device is None or not device.verify_token(token):
                return None
            return device


class ConsoleLanguageForm(forms.Form):
    """The staff member's console language; "follow the browser" until they choose."""

    language = forms.ChoiceField(
        label=_("Console language"),
        choices=[("", _("Follow my browser")), *settings.LANGUAGES],
        required=False,
        widget=forms.RadioSelect,
    )


class RevealForm(forms.Form):
    """What staff ask to reveal.  It renders the choices and the per-field messages; the access
    function repeats every check itself (and records the refusal), whatever was posted."""

    purpose = forms.ChoiceField(label=_("Purpose"))
    field_names = forms.MultipleChoiceField(
        label=_("Fields to reveal"),
        choices=[(f, FIELD_LABELS[f]) for f in PERSONAL_FIELDS],
        widget=forms.CheckboxSelectMultiple,
    )
    reason = forms.CharField(
        label=_("Reason"),
        min_length=MIN_REASON_LENGTH,
        max_length=MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Why you need to see these details now, for example: calling back about the quote. "
            "It is kept in the audit log: do not write names, phone numbers, e-mail addresses or "
            "any other personal information here. At most 200 characters."
        ),
    )

    def __init__(self, *args: Any, role: Role, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        declaration = load_declaration()
        purpose = self.fields["purpose"]
        assert isinstance(purpose, forms.ChoiceField)  # noqa: S101  # declared above
        purpose.choices = [
            (p, str(declaration.purpose(p).staff_name or declaration.purpose(p).name))
            for p in permissions.reveal_purposes(role, inquiry_categories())
        ]

    def submitted(self) -> dict[str, Any]:
        """The request as posted, for the access function to judge (it trusts no form)."""
        data = self.data
        return {
            "fields": data.getlist("field_names") if isinstance(data, QueryDict) else [],
            "purpose": self.data.get("purpose", ""),
            "reason": self.data.get("reason", ""),
        }


class InboxFilterForm(forms.Form):
    """Narrow the inbox by non-personal columns only (status, product, day received)."""

    status = forms.ChoiceField(label=_("Status"), required=False)
    product = forms.ChoiceField(label=_("Product or service"), required=False)
    submitted_from = forms.DateField(
        label=_("Received from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    submitted_to = forms.DateField(
        label=_("Received until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        status = self.fields["status"]
        product = self.fields["product"]
        assert isinstance(status, forms.ChoiceField)  # noqa: S101  # declared above
        assert isinstance(product, forms.ChoiceField)  # noqa: S101  # declared above
        status.choices = [("", _("Any status")), *InquiryStatus.choices]
        product.choices = [("", _("Any product")), *((p.id, str(p.name)) for p in load_declaration().products)]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("submitted_from"), cleaned.get("submitted_to")
        if start and end and start > end:
            self.add_error("submitted_to", _("The end date is before the start date."))
        return cleaned

    def inbox_filter(self) -> InboxFilter:
        data = self.cleaned_data
        return InboxFilter(
            status=data.get("status") or "",
            product=data.get("product") or "",
            submitted_from=data.get("submitted_from"),
            submitted_to=data.get("submitted_to"),
        )


class AuditFilterForm(forms.Form):
    """Narrow the audit log by what it holds that is not personal: the person's reference as the
    log shows it, the staff member, the event type, the days (in the site's time zone)."""

    person = forms.RegexField(
        label=_("Person (reference)"),
        required=False,
        regex=r"^\s*[0-9A-Fa-f]{10}\s*$",
        max_length=20,
        error_messages={"invalid": _("A person's reference is 10 letters and digits (0-9, A-F), as the log shows it.")},
    )
    staff = forms.ModelChoiceField(label=_("Staff member"), required=False, queryset=User.objects.none())
    event_type = forms.ChoiceField(label=_("Event"), required=False)
    occurred_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    occurred_to = forms.DateField(label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        staff, event_type = self.fields["staff"], self.fields["event_type"]
        assert isinstance(staff, forms.ModelChoiceField) and isinstance(event_type, forms.ChoiceField)  # noqa: S101, PT018
        staff.queryset = User.objects.filter(is_staff=True).order_by("username")
        staff.empty_label = _("Anyone")
        event_type.choices = [("", _("Any event")), *EventType.choices]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("occurred_from"), cleaned.get("occurred_to")
        if start and end and start > end:
            self.add_error("occurred_to", _("The end date is before the start date."))
        return cleaned

    def audit_filter(self) -> AuditFilter:
        data = self.cleaned_data
        zone = timezone.get_current_timezone()
        start, end = data.get("occurred_from"), data.get("occurred_to")
        return AuditFilter(
            person=(data.get("person") or "").strip().lower(),
            staff=data.get("staff"),
            event_type=data.get("event_type") or "",
            occurred_from=datetime.combine(start, time.min, tzinfo=zone) if start else None,
            occurred_before=datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone) if end else None,
        )


# --- rights-queue: the rights requests' queue and actions -------------------------------------


class RightsQueueFilterForm(forms.Form):
    """Narrow the queue by plain columns only (state, kind, mine)."""

    status = forms.ChoiceField(label=_("Status"), required=False)
    kind = forms.ChoiceField(label=_("Request"), required=False)
    mine = forms.BooleanField(label=_("Assigned to me"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        status, kind = self.fields["status"], self.fields["kind"]
        assert isinstance(status, forms.ChoiceField) and isinstance(kind, forms.ChoiceField)  # noqa: S101, PT018
        status.choices = [("", _("Any status")), *[c for c in RequestStatus.choices if c[0] != "awaiting_verification"]]
        kind.choices = [("", _("Any kind")), *RequestKind.choices]

    def queue_filter(self) -> QueueFilter:
        data = self.cleaned_data
        return QueueFilter(status=data.get("status") or "", kind=data.get("kind") or "", mine=bool(data.get("mine")))


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(label=_("Assign to"), queryset=User.objects.none(), empty_label=None)

    def __init__(self, *args: Any, handlers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assignee = self.fields["assignee"]
        assert isinstance(assignee, forms.ModelChoiceField)  # noqa: S101  # declared above
        assignee.queryset = handlers


class ExtendForm(forms.Form):
    reason = forms.CharField(
        label=_("Why more time is needed (e-mailed to the person)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
    )


class RefuseForm(forms.Form):
    ground = forms.ChoiceField(label=_("Ground"), choices=RefusalGround.choices)
    reasons = forms.CharField(
        label=_("Reasons (e-mailed to the person)"), widget=forms.Textarea(attrs={"rows": 4}), max_length=4000
    )


class RejectRefusalForm(forms.Form):
    note = forms.CharField(
        label=_("Why you reject the proposed refusal (for the staff member who proposed it; not sent to the person)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
    )


class CompleteForm(forms.Form):
    result = forms.CharField(
        label=_("Result (e-mailed to the person)"), widget=forms.Textarea(attrs={"rows": 4}), max_length=4000
    )
    purpose = forms.ChoiceField(label=_("Consent withdrawn for"), required=False)
    # A request about a deceased person (fulfil.DECEASED_CHECKS): each confirmed by ticking it.
    proof_of_death = forms.BooleanField(label=_("I have seen proof of the person's death"), required=False)
    proof_of_relationship = forms.BooleanField(
        label=_("I have seen proof that the requester is a close relative (spouse, parent, child, sibling...)"),
        required=False,
    )
    no_other_arrangement = forms.BooleanField(
        label=_("The deceased left no arrangement about their personal information that excludes this request"),
        required=False,
    )

    # A request about someone else (a deceased person's, a guardian's child's): the right executed on
    # their record and the address it is found by (fulfil.DECEASED_RIGHTS, fulfil.GUARDIAN_RIGHTS).
    subject_right = forms.ChoiceField(
        label=_("Right executed on the record the request is about"),
        required=False,
        choices=[("", _("None: a written answer only"))] + [(k.value, k.label) for k in fulfil.GUARDIAN_RIGHTS],
    )
    subject_email = forms.EmailField(
        label=_("E-mail address of the record the request is about (the deceased's, or the child's account)"),
        required=False,
        max_length=254,
    )

    def __init__(self, *args: Any, corrections: Sequence[tuple[str, str]] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        declaration = load_declaration()
        purpose = self.fields["purpose"]
        assert isinstance(purpose, forms.ChoiceField)  # noqa: S101  # declared above
        purpose.choices = [("", "—")] + [
            (p.id, str(p.name)) for p in declaration.purposes if p.legal_basis is LegalBasis.CONSENT
        ]
        self.correction_names = []
        for name, label in corrections:
            key = "correct__" + name.replace(".", "__")
            self.fields[key] = forms.CharField(label=label, required=False, max_length=4000)
            self.correction_names.append((key, name))

    def corrections(self) -> dict[str, str]:
        return {name: self.cleaned_data[key] for key, name in self.correction_names if self.cleaned_data.get(key)}

    def deceased_checks(self) -> frozenset[str]:
        return frozenset(name for name in fulfil.DECEASED_CHECKS if self.cleaned_data.get(name))


class RightsRevealForm(forms.Form):
    field_names = forms.MultipleChoiceField(
        label=_("Fields to reveal"),
        choices=[(f, getattr(RightsRequest._meta.get_field(f), "verbose_name", f)) for f in REVEALABLE],
        widget=forms.CheckboxSelectMultiple,
    )
    reason = forms.CharField(
        label=_("Reason"),
        min_length=10,
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Why you need to see this now. Kept in the audit log: write no personal information here."),
    )


# --- access reviews and training (issue 8 §3, §4) ------------------------------------------------


class AccessDecisionForm(forms.Form):
    line = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    decision = forms.ChoiceField(choices=[("confirm", _("Confirm")), ("revoke", _("Revoke"))])


class _StaffChoice(forms.ModelChoiceField):  # type: ignore[type-arg]  # any User queryset
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.get_username())


class TrainingForm(forms.Form):
    staff = _StaffChoice(label=_("Staff member"), queryset=User.objects.none(), empty_label=_("Choose a staff member"))
    course = forms.CharField(label=_("Course"), max_length=200)
    completed_on = forms.DateField(label=_("Completed on"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, staff: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["staff"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101  # declared above
        field.queryset = staff


class LegalHoldForm(forms.Form):
    """A legal hold: on one person (by the reference the console shows) or on a whole category."""

    person = forms.CharField(
        label=_("Person's reference"),
        max_length=10,
        required=False,
        help_text=_("The 10-character reference shown with a request. Leave empty to hold a whole category."),
    )
    category = forms.ChoiceField(label=_("Or a whole category"), required=False)
    reason = forms.CharField(
        label=_("Reason"),
        min_length=10,
        max_length=200,
        help_text=_("A case or file reference; do not write personal information here."),
    )
    ends_on = forms.DateField(label=_("Last day of the hold"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, categories: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["category"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101  # declared above
        field.choices = [("", _("— none: the person above —")), *categories]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if bool(cleaned.get("person")) == bool(cleaned.get("category")):
            raise forms.ValidationError(_("Give either a person's reference or a category, not both."))
        return cleaned


class LiftHoldForm(forms.Form):
    reason = forms.CharField(
        label=_("Why the hold ends now"),
        min_length=10,
        max_length=200,
        help_text=_("A case or file reference; do not write personal information here."),
    )
