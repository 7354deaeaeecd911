"""The consultation request's input validation, for every interface (the page, a future API).

:class:`ConsultationForm` has one field per field of the request that ``Inquiry`` declares
(``REQUEST_FIELDS``), labelled with the model field's ``verbose_name`` and as long as it allows;
``_INPUTS`` says how each is typed in and checked.  What only the web page needs (the CAPTCHA,
autocomplete hints, the "Please choose" entries) is added by ``piwarden.site.forms``.
"""

from __future__ import annotations

import functools
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.forms.utils import flatatt
from django.utils.choices import BaseChoiceIterator
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import format_lazy
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from piwarden.inquiries.actions import Submission
from piwarden.inquiries.models import REQUEST_FIELDS, Inquiry
from piwarden.policy.declaration import load_declaration, region_names
from piwarden.vault.blind import InvalidPhoneNumber, normalise_email, normalise_phone

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

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


class QuickCopy:
    """``copy.copy()`` as a new object of the class with the same attributes, without pickling's protocol.

    Django deep-copies every field of a form for each new form (``BaseForm.__init__``), and each
    field's and widget's ``__deepcopy__`` starts with ``copy.copy(self)``, which for a plain object
    goes through ``__reduce_ex__`` and ``copy._reconstruct``.  This makes the same copy (a new
    instance whose ``__dict__`` is a shallow copy of the original's) at a fraction of the cost;
    the ``__deepcopy__`` methods then copy what they copy (widget, attributes, error messages,
    validators, choices) as before.  The consultation form's ten fields and widgets use it: its
    construction went from ~119 to ~93 µs in process.
    """

    def __copy__(self) -> Any:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new


class TextInput(QuickCopy, forms.TextInput):
    pass


class EmailInput(QuickCopy, forms.EmailInput):
    pass


class CheckboxInput(QuickCopy, forms.CheckboxInput):
    pass


class HiddenInput(QuickCopy, forms.HiddenInput):
    pass


class BooleanField(QuickCopy, forms.BooleanField):
    widget = CheckboxInput


class UUIDField(QuickCopy, forms.UUIDField):
    widget = TextInput


class ChoiceField(QuickCopy, forms.ChoiceField):
    pass


class NormalisedCharField(QuickCopy, forms.CharField):
    """A CharField whose value is NFC-normalised before the length check, validation and storage.

    A decomposed "José" (e + U+0301) and a composed one are the same name: they must pass the
    same checks, count the same length and be stored (and blind-indexed) the same way.
    """

    widget = TextInput

    def to_python(self, value: Any) -> str:
        return unicodedata.normalize("NFC", str(super().to_python(value)))


class NameTextField(NormalisedCharField):
    """A name, a company, a position: spaces collapsed, letters of every script and ``punctuation`` only."""

    def __init__(self, *, punctuation: frozenset[str], message: StrOrPromise, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.punctuation = punctuation
        self.message = message

    def clean(self, value: Any) -> str:
        return _clean_text(super().clean(value), self.punctuation, str(self.message))


class PhoneField(NormalisedCharField):
    """A phone number, stored in E.164 (``vault.blind.normalise_phone``): the form a person is found by."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            _("Mobile or landline; numbers outside mainland China start with + and the country code."),
        )
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        try:
            return normalise_phone(super().clean(value))
        except InvalidPhoneNumber:
            raise forms.ValidationError(
                _(
                    "This is not a valid phone number. "
                    "Numbers outside mainland China start with + and the country code."
                ),
                code="invalid_phone",
            ) from None


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


class MailboxField(QuickCopy, forms.EmailField):
    """An e-mail address, NFC-normalised, that a company contact can really receive mail at.

    Cleaned to the form a person is found by (``vault.blind.normalise_email``).
    """

    widget = EmailInput

    def to_python(self, value: Any) -> str:
        return unicodedata.normalize("NFC", str(super().to_python(value)))

    def clean(self, value: Any) -> str:
        return normalise_email(super().clean(value))

    def run_validators(self, value: Any) -> None:
        if value in self.empty_values:
            return
        check_mailbox(value)  # first, so that the visitor reads the specific reason, and only it
        super().run_validators(value)


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


class OptionSelect(QuickCopy, forms.Select):
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
    return OptionList(sorted(names.items(), key=lambda item: (item[0] != "CN", reading_order(item[1], language))))


@functools.lru_cache(maxsize=8)
def _declared_choices(kind: str, language: str, digest: str) -> OptionList:
    declaration = load_declaration()
    items = {"industry": declaration.industries, "product": declaration.products}[kind]
    return OptionList([(item.id, item.name.get(language)) for item in items])


def choices_for(name: str, language: str) -> OptionList:
    """The choices of the request field ``name`` in ``language``, built once per language (and declaration)."""
    if name == "region":
        return region_choices(language)
    return _declared_choices(name, language, load_declaration().digest)


def language_key(language: str | None) -> str:
    return "en" if (language or "").startswith("en") else "zh-hans"


# --- the request's fields, from the model ------------------------------------------------


def _choice(*, label: StrOrPromise, max_length: int | None) -> forms.Field:
    # A value from a list (its length is the list's); the choices are set per form from
    # choices_for(): an OptionList, taken as it is.
    return ChoiceField(label=label, widget=OptionSelect)


# How each request field is typed in and checked (its label and length come from the model).
# A field not named here is free text with the characters of a company name.
_INPUTS: dict[str, Callable[..., forms.Field]] = {
    "name": functools.partial(
        NameTextField,
        punctuation=_NAME_PUNCTUATION,
        message=_("A name may contain letters, spaces, dots, hyphens and apostrophes only."),
    ),
    "phone": PhoneField,
    "email": MailboxField,
    "company": functools.partial(
        NameTextField,
        punctuation=_ORG_PUNCTUATION,
        message=_("A company name may contain letters, digits, spaces and . , & ( ) - / only."),
    ),
    "industry": _choice,
    "position": functools.partial(
        NameTextField,
        punctuation=_ORG_PUNCTUATION,
        message=_("A position may contain letters, digits, spaces and . , & ( ) - / only."),
    ),
    "region": _choice,
    "product": _choice,
}


_MODEL_FIELDS = {f.name: f for f in Inquiry._meta.concrete_fields}


def _request_field(name: str) -> forms.Field:
    model_field = _MODEL_FIELDS[name]
    label = model_field.verbose_name
    make = _INPUTS.get(name)
    if make is None:
        make = functools.partial(
            NameTextField,
            punctuation=_ORG_PUNCTUATION,
            message=format_lazy(_("{label} may contain letters, digits, spaces and . , & ( ) - / only."), label=label),
        )
    length = getattr(model_field, "plaintext_max_length", None) or model_field.max_length
    return make(label=label, max_length=length)


class _RequestFieldsMetaclass(forms.forms.DeclarativeFieldsMetaclass):
    """Puts a field for each of ``REQUEST_FIELDS`` first, before the fields the class declares."""

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> type:
        if not any(isinstance(base, _RequestFieldsMetaclass) for base in bases):
            attrs = {**{field: _request_field(field) for field in REQUEST_FIELDS}, **attrs}
        return super().__new__(mcs, name, bases, attrs)


@functools.lru_cache(maxsize=16)
def _consent_text(language: str | None, digest: str) -> str:
    """The consent text in ``language`` (the active one) for the declaration of ``digest``, built once."""
    declaration = load_declaration()
    return str(
        _(
            "I have read the Privacy Policy (version %(version)s) and agree that %(controller)s "
            "processes the information above to answer my consultation request."
        )
        % {"version": declaration.version, "controller": declaration.controller.name}
    )


@functools.lru_cache(maxsize=16)
def _age_text(language: str | None, digest: str) -> str:
    """The age statement in ``language`` (the active one), with the declared age threshold."""
    return str(
        _("I am %(age)s or older, or my parent or guardian has agreed to this request.")
        % {"age": load_declaration().children.age_threshold}
    )


class ConsultationForm(forms.Form, metaclass=_RequestFieldsMetaclass):
    """A consultation request, checked: the request's fields, the age statement, the consent, the replay token."""

    age_confirmed = BooleanField(
        required=True,
        help_text=_(
            "Why we ask: the law lets us process a child's personal information only with a parent's or "
            "guardian's consent. If you are younger, please ask your parent or guardian first."
        ),
        error_messages={
            "required": _(
                "Please confirm your age, or that your parent or guardian agreed: without it we cannot take your "
                "request. If you are younger and have no guardian's consent, please ask them first."
            )
        },
    )
    consent = BooleanField(
        required=True,
        error_messages={"required": _("Please tick the box to agree, or we cannot process your request.")},
    )
    submission_token = UUIDField(
        widget=HiddenInput,
        error_messages={
            "invalid": _("This form is damaged or out of date. Please reload the page and fill it in again."),
            "required": _("This form is damaged or out of date. Please reload the page and fill it in again."),
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        language = language_key(get_language())
        for name, field in self.fields.items():
            if isinstance(field, forms.ChoiceField) and name in REQUEST_FIELDS:
                field.choices = self.options(name, language)  # an OptionList: no per-instance normalisation
        self.fields["consent"].label = self.consent_text()
        self.fields["age_confirmed"].label = self.age_text()
        if not self.is_bound:
            self.initial.setdefault("submission_token", uuid.uuid4())

    def options(self, name: str, language: str) -> OptionList:
        """The choices the field ``name`` offers (a page adds its "Please choose" entry)."""
        return choices_for(name, language)

    @staticmethod
    def consent_text() -> str:
        """The consent box's text in the active language, for the declaration in force."""
        return _consent_text(get_language(), load_declaration().digest)

    @staticmethod
    def age_text() -> str:
        """The age statement's text in the active language, with the declared age threshold."""
        return _age_text(get_language(), load_declaration().digest)

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

    def request_fields(self) -> list[forms.BoundField]:
        """The request's fields, in the model's order, for a page to show one by one."""
        return [self[name] for name in REQUEST_FIELDS]

    def to_submission(self, language: str | None = None) -> Submission:
        """The validated request, for ``submit_inquiry`` (call only once ``is_valid()``)."""
        data = self.cleaned_data
        return Submission(
            values={name: data[name] for name in REQUEST_FIELDS},
            submission_token=data["submission_token"],
            language=language or get_language() or settings.LANGUAGE_CODE,
            consent_text=str(self.fields["consent"].label),  # exactly what the box said
            age_statement=str(self.fields["age_confirmed"].label),
        )
