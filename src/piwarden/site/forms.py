"""The consultation page's form: the request's validation plus what only a web page needs.

The CAPTCHA, the browser's autocomplete hints and the "Please choose" entry of each list are the
page's; the request itself is checked by :class:`piwarden.inquiries.forms.ConsultationForm`,
which an API uses as it is.
"""

from __future__ import annotations

import datetime
import functools
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from captcha.conf import settings as captcha_settings
from captcha.fields import CaptchaField, CaptchaTextInput
from captcha.models import CaptchaStore
from django import forms
from django.conf import settings
from django.db import connections, router
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import override, pgettext

from piwarden.inquiries.forms import ConsultationForm, OptionList, choices_for
from piwarden.inquiries.models import FIELD_LABELS, PERSONAL_FIELDS
from piwarden.policy.declaration import load_declaration
from piwarden.prepared import execute
from piwarden.rights.forms import RightsRequestForm

# The browser's autofill names (HTML's autocomplete tokens); every other field gets "off".
AUTOCOMPLETE = {
    "name": "name",
    "company": "organization",
    "position": "organization-title",
    "phone": "tel",
    "email": "email",
}


class CaptchaPicture(CaptchaTextInput):  # type: ignore[misc]  # django-simple-captcha ships no type hints
    """The CAPTCHA widget with its picture described in the page's language.

    Its own template name: Django's form renderer looks in app directories only, where
    django-simple-captcha's template (alt="captcha") would win over an override of the same name.
    """

    template_name = "inquiries/captcha_widget.html"


class HarderCaptchaPicture(CaptchaPicture):
    """The same widget with a longer challenge, asked of a client the risk rules find busy."""

    def fetch_captcha_store(self, name: str, value: Any, attrs: Any = None, generator: Any = None) -> None:
        key = new_challenge(length=HARD_LENGTH)
        self._value = [key, ""]
        self._key = key
        self.id_ = self.build_attrs(attrs).get("id", None)


class OneTimeCaptchaField(CaptchaField):  # type: ignore[misc]  # django-simple-captcha ships no type hints
    """django-simple-captcha's field, answered with one statement: the challenge is deleted as it is read.

    ``DELETE … WHERE hashkey = %s RETURNING response, expiration`` uses the challenge up whatever
    the answer (one attempt per picture, as the library does) and tells whether it was right and
    still valid.  The library's own check also deletes every expired challenge, in a write
    transaction of its own, on every answer; the housekeeping does that here
    (``piwarden.site.housekeeping``).
    """

    def __init__(self, *args: Any, hard: bool = False, taken: TakenChallenge | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hard = hard
        self.taken = taken

    def clean(self, value: list[str]) -> str:
        forms.MultiValueField.clean(self, value)  # required, and each part a string
        hashkey, response = value[0], (value[1] or "").strip().lower()
        value[1] = ""  # never shown again
        # Taken already (take_posted_challenge, in the consultation's counting turn), or now.
        stored = self.taken.stored if self.taken is not None and self.taken.key == hashkey else _take_challenge(hashkey)
        if self.hard and (stored is None or len(stored[0]) < HARD_LENGTH):
            # Not a wrong answer: the risk rules ask this client for the longer challenge now shown.
            raise forms.ValidationError(self.error_messages["harder"], code="harder")
        if captcha_settings.CAPTCHA_TEST_MODE and response == "passed":
            return str(self.compress(value))
        if stored is None or not stored[1] or not secrets.compare_digest(stored[0].encode(), response.encode()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return str(self.compress(value))


# The harder CAPTCHA's length (piwarden.security.risk); the usual one is CAPTCHA_LENGTH (5).
HARD_LENGTH = 7
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def new_challenge(length: int = 0) -> str:
    """A new CAPTCHA challenge stored, its key returned: ``CaptchaStore.generate_key()`` without
    the ORM's save (the library's challenge generator, lower-cased response and expiry; a 40-hex
    key from ``secrets`` rather than SHA-1 of time and ``random``), one INSERT straight to the
    driver (``piwarden.prepared.execute``), as the POST's CAPTCHA check deletes it."""
    if length:
        response = "".join(secrets.choice(_LETTERS) for _ in range(length))
        challenge = response.upper()
    else:
        challenge, response = captcha_settings.get_challenge()()
    hashkey = secrets.token_hex(20)
    expiration = timezone.now() + datetime.timedelta(minutes=int(captcha_settings.CAPTCHA_TIMEOUT))
    execute(_insert_challenge_sql(), [challenge, response.lower(), hashkey, _stored_time(expiration)], rows=False)
    return hashkey


@functools.cache
def _insert_challenge_sql() -> str:
    connection = connections[router.db_for_write(CaptchaStore)]
    quote, meta = connection.ops.quote_name, CaptchaStore._meta
    columns = ", ".join(quote(meta.get_field(f).column) for f in ("challenge", "response", "hashkey", "expiration"))
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES (%s, %s, %s, %s)"  # noqa: S608  # names from the model


def _stored_time(value: Any) -> Any:
    connection = connections[router.db_for_write(CaptchaStore)]
    return CaptchaStore._meta.get_field("expiration").get_db_prep_save(value, connection)


@functools.cache
def _take_challenge_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    meta = CaptchaStore._meta
    table = quote(meta.db_table)
    response, expiration, key = (quote(meta.get_field(f).column) for f in ("response", "expiration", "hashkey"))
    return (
        f"DELETE FROM {table} WHERE {key} = %s "  # noqa: S608  # names from the model; values are bound
        f"RETURNING {response}, CASE WHEN {expiration} > %s THEN 1 ELSE 0 END"
    )


@dataclass(frozen=True)
class TakenChallenge:
    """A posted challenge, deleted before the form is checked: what the deletion returned."""

    key: str
    stored: tuple[str, bool] | None  # (response, still valid); None: no such challenge


def take_posted_challenge(data: Mapping[str, Any]) -> TakenChallenge | None:
    """Use up the challenge a POST answers, now (one ``DELETE … RETURNING``), so that its use joins
    a transaction of the caller's choosing; :class:`OneTimeCaptchaField` given it as ``taken`` then
    checks the answer without a statement.  Only when the field would reach its own deletion (a
    key and an answer, neither blank); otherwise ``None``, and the field decides as before."""
    if settings.PIWARDEN_CAPTCHA != "on":
        return None
    key, answer = data.get("captcha_0"), data.get("captcha_1")
    if not isinstance(key, str) or not isinstance(answer, str) or not key.strip() or not answer.strip():
        return None
    return TakenChallenge(key, _take_challenge(key))


def _take_challenge(hashkey: str) -> tuple[str, bool] | None:
    """Delete the challenge ``hashkey``; its (response, still valid) if there was one."""
    connection = connections[router.db_for_write(CaptchaStore)]
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    # Read to the end (piwarden.prepared.execute): SQLite finishes (and in autocommit commits) the statement only then.
    rows = execute(_take_challenge_sql(connection.alias), [hashkey, now], using=connection.alias)
    if not rows:
        return None
    return str(rows[0][0]), bool(rows[0][1])


@functools.lru_cache(maxsize=16)
def _with_placeholder(name: str, language: str, digest: str) -> OptionList:
    """The choices of ``name`` after a "Please choose" entry, built once per language (and declaration)."""
    with override(language):
        return OptionList([("", str(_("Please choose"))), *choices_for(name, language)])


def list_in_sentence(labels: list[str]) -> str:
    """``["Name", "E-mail", "Position"]`` → "name, e-mail and position" (姓名、电子邮箱和职务)."""
    words = [label[:1].lower() + label[1:] for label in labels]  # labels start a line; here they don't
    if len(words) < 2:  # noqa: PLR2004  # one word needs no "and"
        return "".join(words)
    separator = pgettext("between the items of a list in a sentence", ", ")
    return pgettext("the last two items of a list in a sentence", "%(items)s and %(last)s") % {
        "items": separator.join(words[:-1]),
        "last": words[-1],
    }


def add_captcha(form: forms.Form, *, hard: bool = False, taken: TakenChallenge | None = None) -> None:
    """Give a public page's form the one-time CAPTCHA (unless the site runs without: PIWARDEN_CAPTCHA);
    ``hard``: the longer challenge the risk rules ask of a busy client; ``taken``: the posted
    challenge, already used up (:func:`take_posted_challenge`)."""
    if settings.PIWARDEN_CAPTCHA == "on":
        form.fields["captcha"] = OneTimeCaptchaField(
            hard=hard,
            taken=taken,
            widget=HarderCaptchaPicture() if hard else CaptchaPicture(),
            label=_("Verification code"),
            help_text=_("Type the characters shown in the picture."),
            error_messages={
                "invalid": _("The verification code is wrong; please type the new one."),
                "harder": _(
                    "Many requests came from your network, so please type the longer verification code now shown."
                ),
            },
        )


class ConsultationPageForm(ConsultationForm):
    """The request's form as the consultation page shows it."""

    def __init__(self, *args: Any, hard: bool = False, taken: TakenChallenge | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_captcha(self, hard=hard, taken=taken)
        for name, hint in AUTOCOMPLETE.items():
            self.fields[name].widget.attrs.setdefault("autocomplete", hint)

    def options(self, name: str, language: str) -> OptionList:
        return _with_placeholder(name, language, load_declaration().digest)

    @property
    def personal_fields_text(self) -> str:
        """The personal fields, named as their labels are, as a list in a sentence of the page's language."""
        return list_in_sentence([str(FIELD_LABELS[name]) for name in PERSONAL_FIELDS])

    @classmethod
    def refilled(cls, data: Mapping[str, Any]) -> ConsultationPageForm:
        """An unbound form showing what the visitor typed, with a new CAPTCHA (the "new picture" button).

        Nothing is validated or stored; the values are shown again as the widgets escape them.
        """
        initial: dict[str, Any] = {name: data.get(name, "") for name in cls.base_fields}
        initial["consent"] = bool(data.get("consent"))
        initial["age_confirmed"] = bool(data.get("age_confirmed"))
        try:
            initial["submission_token"] = uuid.UUID(str(data.get("submission_token", "")))
        except ValueError:
            initial["submission_token"] = uuid.uuid4()
        return cls(initial=initial)


class RightsRequestPageForm(RightsRequestForm):
    """The rights request's form as the portal's page shows it: with the CAPTCHA (rights-intake)."""

    def __init__(self, *args: Any, hard: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_captcha(self, hard=hard)
