"""Forms of the administrator's staff page, the grants page and the enrolment page.

They check shape only; the write paths (``piwarden.staff.actions``) decide every rule again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from piwarden.policy.declaration import Role, load_declaration
from piwarden.staff.actions import MAX_GRANT_REASON, MIN_GRANT_REASON
from piwarden.staff.models import MAX_GRANT_HOURS


def role_choices() -> list[tuple[str, str]]:
    return [(r.id, str(r.name)) for r in load_declaration().roles]


class InviteStaffForm(forms.Form):
    username = forms.CharField(label=_("User name"), max_length=150, validators=[UnicodeUsernameValidator()])
    email = forms.EmailField(label=_("E-mail address"), help_text=_("The enrolment link is sent here."))
    role = forms.ChoiceField(label=_("Role"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)  # noqa: S101  # declared above
        role.choices = role_choices()


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)  # noqa: S101  # declared above
        role.choices = role_choices()


# Translated when the form is drawn (a lazy string formatted at import froze the language of the first request).
def _hours_label(hours: int) -> str:
    return gettext("%(hours)s h") % {"hours": hours}


_hours = lazy(_hours_label, str)


class GrantRequestForm(forms.Form):
    """What an administrator asks to see: one (category, purpose) pair their role may ask for."""

    pair = forms.ChoiceField(label=_("Information and purpose"))
    reason = forms.CharField(
        label=_("Reason"),
        min_length=MIN_GRANT_REASON,
        max_length=MAX_GRANT_REASON,
        help_text=_("Name the task, not the person: do not write personal information here."),
    )
    hours = forms.TypedChoiceField(
        label=_("For how long"),
        coerce=int,
        choices=[(h, _hours(h)) for h in range(1, MAX_GRANT_HOURS + 1)],
    )

    def __init__(self, *args: Any, role: Role, pairs: Mapping[str, list[str]] | None = None, **kwargs: Any) -> None:
        """``pairs``: the (category, purposes) offered; the role's grantable ones unless given (a
        child's ticket offers what the role may reveal of the record)."""
        super().__init__(*args, **kwargs)
        declaration = load_declaration()
        categories = {c.id: c for c in declaration.categories}
        choices = []
        for category, purposes in (role.grantable if pairs is None else pairs).items():
            for purpose in purposes:
                declared = declaration.purpose(purpose)
                label = f"{categories[category].name} · {declared.staff_name or declared.name}"
                choices.append((f"{category}:{purpose}", label))
        pair = self.fields["pair"]
        assert isinstance(pair, forms.ChoiceField)  # noqa: S101  # declared above
        pair.choices = choices

    def request(self) -> dict[str, Any]:
        category, _sep, purpose = self.cleaned_data["pair"].partition(":")
        return {
            "category": category,
            "purpose": purpose,
            "reason": self.cleaned_data["reason"],
            "hours": self.cleaned_data["hours"],
        }


class EnrolmentForm(forms.Form):
    password1 = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label=_("Password (again)"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    otp_token = forms.CharField(
        label=_("6-digit code"),
        max_length=6,
        min_length=6,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second:
            if first != second:
                self.add_error("password2", _("The passwords differ."))
            else:
                try:
                    validate_password(first, self.user)
                except forms.ValidationError as exc:
                    self.add_error("password1", exc)
        return cleaned
