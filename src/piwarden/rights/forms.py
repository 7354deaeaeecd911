"""A rights request's input validation, for every interface (the portal's pages, the JSON API).

What only a web page needs (the CAPTCHA) is added by ``piwarden.site.forms``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from piwarden.inquiries.forms import MailboxField
from piwarden.rights.actions import CodeOutcome, RequestInput, normalise_reference
from piwarden.rights.codes import normalise_code
from piwarden.rights.models import (
    CODE_ATTEMPTS,
    CODE_DIGITS,
    CODE_LIFETIME,
    REFERENCE_LENGTH,
    ActingAs,
    RequestKind,
    RightsRequest,
)

DETAILS_MAX = RightsRequest._meta.get_field("details").plaintext_max_length
# Kinds whose request says nothing without details: what to correct, which consent to withdraw.
NEEDS_DETAILS = frozenset({RequestKind.CORRECTION, RequestKind.WITHDRAWAL, RequestKind.COMPLAINT})
_ALLOWED_CONTROLS = frozenset("\n\t")


class DetailsField(forms.CharField):
    """Free text: NFC, line ends as ``\\n``, no control or bidi-override characters."""

    def to_python(self, value: Any) -> str:
        text = unicodedata.normalize("NFC", str(super().to_python(value))).replace("\r\n", "\n").replace("\r", "\n")
        return text.strip()

    def validate(self, value: Any) -> None:
        super().validate(value)
        if any(unicodedata.category(c) in {"Cc", "Cf"} and c not in _ALLOWED_CONTROLS for c in value):
            raise forms.ValidationError(
                _("The text contains invisible control characters; please type it again."), code="control_characters"
            )


class _OneValueForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        # A field sent twice (HTTP parameter pollution) is ambiguous: refuse it.
        cleaned = super().clean() or {}
        getlist = getattr(self.data, "getlist", None)
        if getlist is not None:
            for name in self.fields:
                if len(getlist(name)) > 1:
                    self.add_error(name, _("Please give only one value."))
        return cleaned

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.error_messages.setdefault("required", _("This field is required."))


class RightsRequestForm(_OneValueForm):
    """A new request: which right, the requester's e-mail, what they ask, on whose behalf."""

    kind = forms.ChoiceField(
        label=_("What would you like to do?"), choices=RequestKind.choices, widget=forms.RadioSelect
    )
    email = MailboxField(
        label=_("Your e-mail address"),
        max_length=254,
        help_text=_("We send a one-time code there to confirm that the request is yours. Nothing else is asked."),
    )
    acting_as = forms.ChoiceField(
        label=_("On whose behalf"), choices=ActingAs.choices, initial=ActingAs.SELF, widget=forms.RadioSelect
    )
    details = DetailsField(
        label=_("Details"),
        required=False,
        max_length=DETAILS_MAX,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_(
            "For a correction: what is wrong and the right value. For a withdrawal: which purpose. For a guardian or "
            "a close relative of a deceased person: whom you act for and your relationship to them."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].widget.attrs.setdefault("autocomplete", "email")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind, acting_as, details = cleaned.get("kind"), cleaned.get("acting_as"), cleaned.get("details", "")
        relative = acting_as == ActingAs.RELATIVE_OF_DECEASED
        if kind == RequestKind.DECEASED_RELATIVE and acting_as and not relative:
            self.add_error(
                "acting_as", _("A request about a deceased person is made as their close relative: choose that.")
            )
        elif relative and kind and kind != RequestKind.DECEASED_RELATIVE:
            self.add_error(
                "kind", _("As a close relative of a deceased person, choose the request about a deceased relative.")
            )
        if not details and "details" not in self.errors:
            if kind in NEEDS_DETAILS:
                self.add_error("details", _("Please say what you ask for in the details."))
            elif acting_as in {ActingAs.GUARDIAN, ActingAs.RELATIVE_OF_DECEASED}:
                self.add_error("details", _("Please say whom you act for and your relationship to them."))
        return cleaned

    def to_input(self, language: str | None = None) -> RequestInput:
        data = self.cleaned_data
        return RequestInput(
            kind=RequestKind(data["kind"]),
            email=data["email"],
            details=data["details"],
            acting_as=ActingAs(data["acting_as"]),
            language=language or get_language() or settings.LANGUAGE_CODE,
        )


class ReferenceField(forms.CharField):
    def to_python(self, value: Any) -> str:
        return normalise_reference(unicodedata.normalize("NFKC", str(super().to_python(value))))

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and len(value) != REFERENCE_LENGTH:
            raise forms.ValidationError(
                _("A reference has %(length)d letters and digits, as in the e-mail we sent.")
                % {"length": REFERENCE_LENGTH},
                code="reference",
            )


class CodeField(forms.CharField):
    def to_python(self, value: Any) -> str:
        return normalise_code(unicodedata.normalize("NFKC", str(super().to_python(value))))

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and (len(value) != CODE_DIGITS or not value.isdigit()):
            raise forms.ValidationError(
                _("The code has %(digits)d digits, as in the e-mail we sent.") % {"digits": CODE_DIGITS}, code="code"
            )


def _reference_field() -> ReferenceField:
    return ReferenceField(label=_("Reference"), max_length=20, widget=forms.TextInput(attrs={"autocomplete": "off"}))


class FollowForm(_OneValueForm):
    """Follow a request: its reference and the e-mail address it was sent with."""

    reference = _reference_field()
    email = MailboxField(label=_("Your e-mail address"), max_length=254)


class CodeForm(_OneValueForm):
    """A one-time code typed back, with the reference of the request it is for."""

    reference = _reference_field()
    code = CodeField(
        label=_("One-time code"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def code_refusal(outcome: CodeOutcome) -> str:
    """Why a code did not open the request, in the active language: the portal's page and the API say the same."""
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    messages = {
        CodeOutcome.WRONG: gettext(
            "That code is not right for this reference. Check both in our e-mail and try again. A code works "
            "for %(minutes)d minutes and stops working after %(attempts)d wrong tries: then ask for a new one."
        )
        % {"minutes": minutes, "attempts": CODE_ATTEMPTS},
        CodeOutcome.EXPIRED: gettext("This code has expired: a code works for %(minutes)d minutes. Ask for a new one.")
        % {"minutes": minutes},
        CodeOutcome.USED: gettext("This code has been used already: each code works once. Ask for a new one."),
        CodeOutcome.EXHAUSTED: gettext(
            "This code was typed wrongly %(attempts)d times, so it no longer works. Ask for a new one."
        )
        % {"attempts": CODE_ATTEMPTS},
    }
    return messages[outcome]


def too_many_codes_message() -> str:
    """The refusal when this address was sent too many codes lately (the portal's page and the API's 429)."""
    return gettext("Too many codes were sent to this e-mail address recently. Please wait an hour and try again.")
