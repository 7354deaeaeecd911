from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django_otp.forms import OTPAuthenticationForm

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["otp_token"].required = True
        self.fields["otp_token"].label = _("Authenticator code")
        self.fields["otp_token"].widget.attrs.update({"autocomplete": "one-time-code", "inputmode": "numeric"})
        # A single device per staff member: no device picker, no challenge button.
        self.fields.pop("otp_device", None)
        self.fields.pop("otp_challenge", None)


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
        purpose.choices = [(p, str(declaration.purpose(p).name)) for p in role.reveal_purposes]
