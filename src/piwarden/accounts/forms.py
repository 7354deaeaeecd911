"""The account pages' forms: one validation for every interface, errors in the visitor's language."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from piwarden.accounts import passwords
from piwarden.accounts.actions import SignUp, is_child
from piwarden.inquiries.forms import MailboxField, PhoneField
from piwarden.rights.forms import _OneValueForm

OLDEST_YEARS = 130


class PasswordInput(forms.PasswordInput):
    """A password box the strength script (``accounts/password.js``) annotates as they type."""

    def __init__(self, *, new: bool = False) -> None:
        attrs: dict[str, Any] = {"autocomplete": "new-password" if new else "current-password"}
        if new:
            attrs |= {"data-password-strength": "", "minlength": str(passwords.MIN_LENGTH_WITH_MFA)}
        attrs["maxlength"] = str(passwords.MAX_LENGTH)
        super().__init__(attrs=attrs)


def new_password_field(label: Any = None) -> forms.CharField:
    return forms.CharField(
        label=label or _("Password"),
        strip=False,  # every character counts, spaces too
        widget=PasswordInput(new=True),
        help_text=_(
            "At least 15 characters (8 once you use an authenticator app), up to 256; any characters, spaces "
            "included. No rules about digits or symbols: length is what counts."
        ),
    )


def current_password_field(label: Any = None) -> forms.CharField:
    return forms.CharField(
        label=label or _("Password"), strip=False, max_length=passwords.MAX_LENGTH * 4, widget=PasswordInput()
    )


class OptionalPhoneField(PhoneField):
    def clean(self, value: Any) -> str:
        if not str(value or "").strip():
            return ""
        return super().clean(value)


class SignUpForm(_OneValueForm):
    email = MailboxField(label=_("E-mail"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    phone = OptionalPhoneField(label=_("Mobile number (optional)"), required=False, max_length=32)
    date_of_birth = forms.DateField(
        label=_("Date of birth"),
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        help_text=_(
            "Under 14, a parent or guardian must agree before the account can be used (privacy policy, section 8)."
        ),
        error_messages={"invalid": _("Enter the date as year-month-day, such as 2001-09-30.")},
    )
    guardian_email = MailboxField(
        label=_("Parent's or guardian's e-mail (under 14 only)"),
        required=False,
        max_length=254,
        help_text=_("We ask them to agree before your account can be used."),
    )
    password = new_password_field()
    accept = forms.BooleanField(
        label=_("I have read the privacy policy, which says how my account's information is used."),
        error_messages={"required": _("Please confirm that you have read the privacy policy.")},
    )

    def clean_date_of_birth(self) -> datetime.date:
        value: datetime.date = self.cleaned_data["date_of_birth"]
        today = timezone.localdate()
        if value > today:
            raise forms.ValidationError(_("The date of birth cannot be in the future."), code="future")
        if value.year < today.year - OLDEST_YEARS:
            raise forms.ValidationError(_("Please check the year of your date of birth."), code="too_old")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        born = cleaned.get("date_of_birth")
        if born is not None and is_child(born):
            guardian = cleaned.get("guardian_email")
            if not guardian and "guardian_email" not in self.errors:
                self.add_error(
                    "guardian_email",
                    forms.ValidationError(
                        _("You are under 14: give the e-mail address of a parent or guardian, who must agree."),
                        code="guardian_needed",
                    ),
                )
            elif guardian and guardian == cleaned.get("email"):
                self.add_error(
                    "guardian_email",
                    forms.ValidationError(
                        _("Give your parent's or guardian's own e-mail address, not yours."), code="same_address"
                    ),
                )
        password = cleaned.get("password")
        if password is not None:
            for problem in passwords.problems(password, email=cleaned.get("email", "")):
                self.add_error("password", problem)
        return cleaned

    def to_sign_up(self) -> SignUp:
        data = self.cleaned_data
        return SignUp(
            email=data["email"],
            phone=data["phone"],
            date_of_birth=data["date_of_birth"],
            guardian_email=data["guardian_email"] or "",
            password=data["password"],
            language=get_language() or "zh-hans",
        )


class SignInForm(_OneValueForm):
    email = MailboxField(label=_("E-mail"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = current_password_field()


class CodeForm(_OneValueForm):
    code = forms.RegexField(
        label=_("Code from your authenticator app"),
        regex=r"^\s*[0-9]{3}\s?[0-9]{3}\s*$",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        error_messages={"invalid": _("Type the 6 digits your authenticator app shows.")},
    )


class EmailForm(_OneValueForm):
    email = MailboxField(label=_("E-mail"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))


class NewPasswordForm(_OneValueForm):
    """A new password (reset, change): its rules depend on whether an authenticator is set."""

    password = new_password_field(_("New password"))

    def __init__(self, *args: Any, email: str = "", with_mfa: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email, self.with_mfa = email, with_mfa

    def clean_password(self) -> str:
        value: str = self.cleaned_data["password"]
        for problem in passwords.problems(value, email=self.email, with_mfa=self.with_mfa):
            self.add_error("password", problem)
        return value


class ChangePasswordForm(NewPasswordForm):
    current = current_password_field(_("Current password"))

    field_order = ["current", "password"]


class CancelForm(_OneValueForm):
    password = current_password_field(_("Your password, to confirm"))
    code = forms.CharField(label=_("Code from your authenticator app"), required=False, max_length=8)
    confirm = forms.BooleanField(
        label=_(
            "I understand that my account and the information linked to it are deleted, and this cannot be undone."
        ),
        error_messages={"required": _("Tick the box to confirm that you want to cancel the account.")},
    )


class RemoveTotpForm(_OneValueForm):
    password = current_password_field(_("Your password, to confirm"))
