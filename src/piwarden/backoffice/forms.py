from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django_otp.forms import OTPAuthenticationForm
from django_otp.plugins.otp_totp.models import TOTPDevice

from piwarden.inquiries.models import PERSONAL_FIELDS
from piwarden.policy.declaration import Role, load_declaration
from piwarden.staff.access import MIN_REASON_LENGTH

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
    purpose = forms.ChoiceField(label=_("Purpose"))
    field_names = forms.MultipleChoiceField(
        label=_("Fields to reveal"),
        choices=[(f, FIELD_LABELS[f]) for f in PERSONAL_FIELDS],
        widget=forms.CheckboxSelectMultiple,
    )
    reason = forms.CharField(
        label=_("Reason"),
        min_length=MIN_REASON_LENGTH,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Why you need to see these details now (recorded in the audit log)."),
    )

    def __init__(self, *args: Any, role: Role, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        declaration = load_declaration()
        purpose = self.fields["purpose"]
        assert isinstance(purpose, forms.ChoiceField)  # noqa: S101  # declared above
        purpose.choices = [
            (p, str(declaration.purpose(p).staff_name or declaration.purpose(p).name)) for p in role.reveal_purposes
        ]
