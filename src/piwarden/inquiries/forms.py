"""The consultation form: exactly the declared fields, validated at the boundary."""

from __future__ import annotations

import functools
import re
import uuid
from typing import Any

import pycountry
from captcha.fields import CaptchaField
from django import forms
from django.conf import settings
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from piwarden.policy.declaration import load_declaration, region_name
from piwarden.vault.blind import InvalidPhoneNumber, normalise_email, normalise_phone

# Letters of any script, combining marks, digits, spaces and the punctuation
# that real names and company names use.  Everything else (markup, quotes,
# semicolons, '=', control characters) is refused with a clear message rather
# than stored: nothing downstream should ever have to escape it.
# ``[^\W_]`` is a letter, mark or digit of any script (``\w`` without the underscore).
_NAME_RE = re.compile(r"^(?:[^\W_]|[\s.'’\-·・])+$")
_ORG_RE = re.compile(r"^(?:[^\W_]|[\s.,'’&()\-·・/（）])+$")


def _clean_text(value: str, pattern: re.Pattern[str], message: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise forms.ValidationError(_("This field is required."), code="required")
    if "--" in value or not pattern.fullmatch(value):
        raise forms.ValidationError(message, code="invalid_characters")
    return value


@functools.lru_cache(maxsize=8)
def region_choices(language: str | None) -> tuple[tuple[str, str], ...]:
    # Cached per language: building and sorting ~250 localised names was ~6% of a consultation POST.
    choices = [(c.alpha_2, region_name(c.alpha_2, language)) for c in pycountry.countries]
    choices.sort(key=lambda item: (item[0] != "CN", item[1]))  # the PRC first, then by name
    return tuple(choices)


class ConsultationForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    phone = forms.CharField(
        label=_("Contact number"),
        max_length=32,
        help_text=_("Mobile or landline; numbers outside mainland China start with + and the country code."),
    )
    email = forms.EmailField(label=_("E-mail"), max_length=254)
    company = forms.CharField(label=_("Company"), max_length=200)
    industry = forms.ChoiceField(label=_("Industry"))
    position = forms.CharField(label=_("Position"), max_length=100)
    region = forms.ChoiceField(label=_("Country / region"))
    product = forms.ChoiceField(label=_("Product or service of interest"))
    consent = forms.BooleanField(required=True)
    submission_token = forms.UUIDField(
        widget=forms.HiddenInput,
        error_messages={
            "invalid": _("This form is damaged or out of date. Please reload the page and fill it in again."),
            "required": _("This form is damaged or out of date. Please reload the page and fill it in again."),
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        declaration = load_declaration()
        language = get_language()
        placeholder = [("", _("Please choose"))]
        choices = {
            "industry": placeholder + [(i.id, i.name.get(language)) for i in declaration.industries],
            "product": placeholder + [(p.id, p.name.get(language)) for p in declaration.products],
            "region": placeholder + list(region_choices(language)),
        }
        for name, options in choices.items():
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)  # noqa: S101  # declared above as ChoiceFields
            field.choices = options
        self.fields["consent"].label = self.consent_text()
        self.fields["consent"].error_messages["required"] = _(
            "Please tick the box to agree, or we cannot process your request."
        )
        if not self.is_bound:
            self.initial.setdefault("submission_token", uuid.uuid4())
        if settings.PIWARDEN_CAPTCHA == "on":
            self.fields["captcha"] = CaptchaField(
                label=_("Verification code"),
                help_text=_("Type the characters shown in the picture."),
                error_messages={"invalid": _("The verification code is wrong; please type the new one.")},
            )
        for name, field in self.fields.items():
            field.error_messages.setdefault("required", _("This field is required."))
            if name in {"name", "company", "position", "phone", "email"}:
                field.widget.attrs.setdefault("autocomplete", _AUTOCOMPLETE.get(name, "off"))

    @staticmethod
    def consent_text() -> str:
        declaration = load_declaration()
        return str(
            _(
                "I have read the Privacy Policy (version %(version)s) and agree that %(controller)s "
                "processes the information above to answer my consultation request."
            )
            % {"version": declaration.version, "controller": declaration.controller.name}
        )

    def clean_name(self) -> str:
        return _clean_text(
            self.cleaned_data["name"],
            _NAME_RE,
            str(_("A name may contain letters, spaces, dots, hyphens and apostrophes only.")),
        )

    def clean_company(self) -> str:
        return _clean_text(
            self.cleaned_data["company"],
            _ORG_RE,
            str(_("A company name may contain letters, digits, spaces and . , & ( ) - / only.")),
        )

    def clean_position(self) -> str:
        return _clean_text(
            self.cleaned_data["position"],
            _ORG_RE,
            str(_("A position may contain letters, digits, spaces and . , & ( ) - / only.")),
        )

    def clean_email(self) -> str:
        return normalise_email(self.cleaned_data["email"])

    def clean_phone(self) -> str:
        try:
            return normalise_phone(self.cleaned_data["phone"])
        except InvalidPhoneNumber:
            raise forms.ValidationError(
                _(
                    "This is not a valid phone number. "
                    "Numbers outside mainland China start with + and the country code."
                ),
                code="invalid_phone",
            ) from None

    def clean(self) -> dict[str, Any]:
        # A field sent twice (HTTP parameter pollution) is ambiguous: Django would
        # silently keep the last value while a proxy or log may show the first.
        cleaned = super().clean() or {}
        getlist = getattr(self.data, "getlist", None)
        if getlist is not None:
            for name in self.fields:
                if len(getlist(name)) > 1:
                    self.add_error(name, _("Please give only one value."))
        return cleaned


_AUTOCOMPLETE = {
    "name": "name",
    "company": "organization",
    "position": "organization-title",
    "phone": "tel",
    "email": "email",
}
