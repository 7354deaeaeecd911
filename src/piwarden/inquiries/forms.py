"""The consultation form: exactly the declared fields, validated at the boundary."""

from __future__ import annotations

import functools
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from captcha.fields import CaptchaField, CaptchaTextInput
from django import forms
from django.conf import settings
from django.forms.utils import flatatt
from django.utils.choices import BaseChoiceIterator
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, override
from django.utils.translation import gettext_lazy as _

from piwarden.policy.declaration import load_declaration, region_names
from piwarden.vault.blind import InvalidPhoneNumber, normalise_email, normalise_phone

# --- names: letters of every script ------------------------------------------------------
#
# A name or company is letters and combining marks of any script (Devanagari vowel signs and
# Thai tone marks are marks, not letters, so ``\w`` alone refuses "प्रिया" and "สมศักดิ์"),
# decimal digits, single spaces and the punctuation that real names use.  Everything else
# (markup, quotes, semicolons, '=', control and bidi-override characters) is refused with a
# clear message rather than stored: nothing downstream should ever have to escape it.
_NAME_PUNCTUATION = frozenset(" .'’-·・")
_ORG_PUNCTUATION = _NAME_PUNCTUATION | frozenset(",&()/（）")
# Zero-width (non-)joiners shape Indic and Persian names; allowed only inside a word.
_JOINERS = frozenset("\u200c\u200d")


def _is_word_character(character: str) -> bool:
    category = unicodedata.category(character)
    return category[0] in "LM" or category == "Nd"


def _only_name_characters(value: str, punctuation: frozenset[str]) -> bool:
    if not value or not unicodedata.category(value[0]).startswith(("L", "N")):
        return False  # a name starts with a letter or digit, never with a mark, joiner or dot
    for i, character in enumerate(value):
        if _is_word_character(character) or character in punctuation:
            continue
        if character in _JOINERS and i + 1 < len(value) and _is_word_character(value[i + 1]):
            continue
        return False
    return "--" not in value  # an SQL comment marker is no part of a name


def _clean_text(value: str, punctuation: frozenset[str], message: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise forms.ValidationError(_("This field is required."), code="required")
    if not _only_name_characters(value, punctuation):
        raise forms.ValidationError(message, code="invalid_characters")
    return value


class NormalisedCharField(forms.CharField):
    """A CharField whose value is NFC-normalised before the length check, validation and storage.

    A decomposed "José" (e + U+0301) and a composed one are the same name: they must pass the
    same checks, count the same length and be stored (and blind-indexed) the same way.
    """

    def to_python(self, value: Any) -> str:
        return unicodedata.normalize("NFC", str(super().to_python(value)))


# --- e-mail: a mailbox a company contact can really have ---------------------------------
#
# Django accepts what RFC 5322 allows: quoted local parts ("<b>x</b>"@example.com), IP
# literals and ``localhost``.  None of those is a mailbox through which we can answer a
# consultation, and the quoted form carries markup into every place the address is shown.
_MIN_DOMAIN_LABELS = 2  # a name and a top-level domain: example.com, not localhost
_RESERVED_TOP_LEVEL = frozenset({"localhost", "local", "localdomain", "invalid", "test", "example", "internal", "lan"})


def check_mailbox(address: str) -> None:
    """Refuse, with its own message, an address that is well-formed but no company contact's mailbox."""
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        return  # not an address at all: Django's "Enter a valid email address." says so
    if local.startswith('"'):
        raise forms.ValidationError(
            _(
                "An e-mail address cannot contain quotation marks here. "
                "Please give the address you use, such as name@example.com."
            ),
            code="quoted_local_part",
        )
    labels = [] if domain.startswith("[") or domain.endswith(".") else domain.split(".")
    if len(labels) < _MIN_DOMAIN_LABELS or labels[-1].lower() in _RESERVED_TOP_LEVEL:
        raise forms.ValidationError(
            _("After the @ there must be a full domain name that receives e-mail, such as example.com."),
            code="not_a_mail_domain",
        )


class MailboxField(forms.EmailField):
    """An e-mail address, NFC-normalised, that a company contact can really receive mail at."""

    def to_python(self, value: Any) -> str:
        return unicodedata.normalize("NFC", str(super().to_python(value)))

    def run_validators(self, value: Any) -> None:
        if value in self.empty_values:
            return
        check_mailbox(value)  # first, so that the visitor reads the specific reason, and only it
        super().run_validators(value)


class CaptchaPicture(CaptchaTextInput):  # type: ignore[misc]  # django-simple-captcha ships no type hints
    """The CAPTCHA widget with its picture described in the page's language.

    Its own template name: Django's form renderer looks in app directories only, where
    django-simple-captcha's template (alt="captcha") would win over an override of the same name.
    """

    template_name = "inquiries/captcha_widget.html"


# --- choices, built and rendered once per language ---------------------------------------


class OptionList(BaseChoiceIterator):
    """Choices normalised and rendered to ``<option>`` HTML once, shared by every form instance.

    Django re-normalises a plain list of choices for every form (~0.7 ms for 250 regions) and
    renders each option through a template include (~10 ms for the region list); a
    ``BaseChoiceIterator`` is kept as it is, and :class:`OptionSelect` reuses the HTML.
    """

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = tuple(items)
        self.html = tuple(format_html('<option value="{}">{}</option>', value, label) for value, label in self.items)
        self.selected_html = tuple(
            format_html('<option value="{}" selected>{}</option>', value, label) for value, label in self.items
        )
        self.position = {value: i for i, (value, _label) in enumerate(self.items)}

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class OptionSelect(forms.Select):
    """A ``<select>`` that renders an :class:`OptionList` from its cached HTML."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        options = self.choices
        if not isinstance(options, OptionList):
            return super().render(name, value, attrs, renderer)
        html = list(options.html)
        for selected in self.format_value(value):
            position = options.position.get(selected)
            if position is not None:
                html[position] = options.selected_html[position]
                break  # one value: the first match is selected, as Django's Select does
        attributes = flatatt(self.build_attrs(self.attrs, attrs))
        return format_html('<select name="{}"{}>\n', name, attributes) + mark_safe("\n".join(html) + "\n</select>")  # noqa: S308  # each option was built by format_html above


def _language_key(language: str | None) -> str:
    return "en" if (language or "").startswith("en") else "zh-hans"


def reading_order(name: str, language: str) -> tuple[Any, ...]:
    """Sort key for a name as a reader of ``language`` expects to find it.

    Chinese: by Hanyu Pinyin, syllable by syllable, tone after the letters (pypinyin reads
    whole words, so 秘鲁 sorts under *bi* and 巴勒斯坦 under *le*: Babel ships CLDR's names but
    not its collation tables, and PyICU needs the ICU C++ library built on every machine).
    English: letters without accents, case-insensitively (Åland under A, Côte d'Ivoire under C).
    """
    if language == "en":
        bare = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
        return (bare.casefold(), name)
    from pypinyin import Style, lazy_pinyin  # noqa: PLC0415  # 50 MB of phrase data: load only where the form is shown

    return (tuple(lazy_pinyin(name, style=Style.TONE3)), name)


@functools.lru_cache(maxsize=4)
def region_choices(language: str) -> OptionList:
    """The regions in the reader's order, mainland China first (the storage region, most visitors)."""
    names = region_names(language)
    ordered = sorted(names.items(), key=lambda item: (item[0] != "CN", reading_order(item[1], language)))
    return _with_placeholder(language, ordered)


@functools.lru_cache(maxsize=8)
def _declared_choices(kind: str, language: str, digest: str) -> OptionList:
    declaration = load_declaration()
    items = declaration.industries if kind == "industry" else declaration.products
    return _with_placeholder(language, [(item.id, item.name.get(language)) for item in items])


def _with_placeholder(language: str, items: list[tuple[str, str]]) -> OptionList:
    with override(language):
        return OptionList([("", str(_("Please choose"))), *items])


class ConsultationForm(forms.Form):
    name = NormalisedCharField(label=_("Name"), max_length=100)
    phone = NormalisedCharField(
        label=_("Contact number"),
        max_length=32,
        help_text=_("Mobile or landline; numbers outside mainland China start with + and the country code."),
    )
    email = MailboxField(label=_("E-mail"), max_length=254)
    company = NormalisedCharField(label=_("Company"), max_length=200)
    industry = forms.ChoiceField(label=_("Industry"), widget=OptionSelect)
    position = NormalisedCharField(label=_("Position"), max_length=100)
    region = forms.ChoiceField(label=_("Country / region"), widget=OptionSelect)
    product = forms.ChoiceField(label=_("Product or service of interest"), widget=OptionSelect)
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
        language = _language_key(get_language())
        digest = load_declaration().digest
        choices = {
            "industry": _declared_choices("industry", language, digest),
            "product": _declared_choices("product", language, digest),
            "region": region_choices(language),
        }
        for name, options in choices.items():
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)  # noqa: S101  # declared above as ChoiceFields
            field.choices = options  # an OptionList is taken as it is: no per-instance normalisation
        self.fields["consent"].label = self.consent_text()
        self.fields["consent"].error_messages["required"] = _(
            "Please tick the box to agree, or we cannot process your request."
        )
        if not self.is_bound:
            self.initial.setdefault("submission_token", uuid.uuid4())
        if settings.PIWARDEN_CAPTCHA == "on":
            self.fields["captcha"] = CaptchaField(
                widget=CaptchaPicture(),
                label=_("Verification code"),
                help_text=_("Type the characters shown in the picture."),
                error_messages={"invalid": _("The verification code is wrong; please type the new one.")},
            )
        for name, field in self.fields.items():
            field.error_messages.setdefault("required", _("This field is required."))
            if name in {"name", "company", "position", "phone", "email"}:
                field.widget.attrs.setdefault("autocomplete", _AUTOCOMPLETE.get(name, "off"))

    @classmethod
    def refilled(cls, data: Mapping[str, Any]) -> ConsultationForm:
        """An unbound form showing what the visitor typed, with a new CAPTCHA (the "new picture" button).

        Nothing is validated or stored; the values are shown again as the widgets escape them.
        """
        initial: dict[str, Any] = {name: data.get(name, "") for name in cls.base_fields}
        initial["consent"] = bool(data.get("consent"))
        try:
            initial["submission_token"] = uuid.UUID(str(data.get("submission_token", "")))
        except ValueError:
            initial["submission_token"] = uuid.uuid4()
        return cls(initial=initial)

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
            _NAME_PUNCTUATION,
            str(_("A name may contain letters, spaces, dots, hyphens and apostrophes only.")),
        )

    def clean_company(self) -> str:
        return _clean_text(
            self.cleaned_data["company"],
            _ORG_PUNCTUATION,
            str(_("A company name may contain letters, digits, spaces and . , & ( ) - / only.")),
        )

    def clean_position(self) -> str:
        return _clean_text(
            self.cleaned_data["position"],
            _ORG_PUNCTUATION,
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
