from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django_otp.forms import OTPAuthenticationForm
from django_otp.plugins.otp_totp.models import TOTPDevice

from piwarden.inquiries.models import PERSONAL_FIELDS, InquiryStatus
from piwarden.policy.declaration import Role, load_declaration
from piwarden.staff.access import MAX_REASON_LENGTH, MIN_REASON_LENGTH, InboxFilter, inquiry_categories

FIELD_LABELS = {
    "name": _("Name"),
    "phone": _("Contact number"),
    "email": _("E-mail"),
    "company": _("Company"),
    "industry": _("Industry"),
    "position": _("Position"),
    "region": _("Country / region"),
}


class StaffLoginForm(OTPAuthenticationForm):  # type: ignore[misc]  # django_otp ships no type hints
    """Username, password and the authenticator's current code, in one step."""

    # django-otp ships no Chinese; these are ours, in our catalogue.
    otp_error_messages = dict(
        OTPAuthenticationForm.otp_error_messages,
        token_required=_("Enter the 6-digit code from your authenticator app."),
        invalid_token=_("The authenticator code is wrong or was already used. Wait for the next code and try again."),
        n_failed_attempts=ngettext_lazy(
            "Code checking is paused after %(failure_count)d failed attempt; try again in a minute.",
            "Code checking is paused after %(failure_count)d failed attempts; try again in a minute.",
            "failure_count",
        ),
        verification_not_allowed=_("Code checking is not allowed right now; try again in a minute."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["otp_token"].required = True
        self.fields["otp_token"].label = _("Authenticator code")
        self.fields["otp_token"].widget.attrs.update({"autocomplete": "one-time-code", "inputmode": "numeric"})
        # A single device per staff member: no device picker, no challenge button.
        self.fields.pop("otp_device", None)
        self.fields.pop("otp_challenge", None)

    def _chosen_device(self, user: AbstractBaseUser) -> TOTPDevice | None:
        # With no picker, django-otp (>= 1.7) would refuse every code ("Please select a device"):
        # verify against the staff member's own confirmed authenticator, locked as django-otp does.
        return TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()


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
            for p in role.purposes_for(inquiry_categories())
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
