"""What changed between two versions of the policy, and which material kinds of §十 that makes.

:func:`compare` reads two declarations section by section (purposes, categories, recipients,
rights, contact) and says, in the reader's language, what was added, removed or changed; it derives
the material kinds the declaration can show (§十 (1) purposes, categories or use; (2) the
controller; (3) recipients; (4) rights; (5) contact).  The others, a change of ownership the
declaration does not show and (6) an impact assessment's high-risk result, are declared by the
operator (``piwarden policy publish --kind``).  It also lists what *reduces* people's rights (a right
no longer offered, a longer answering deadline), which is never published without the operator's
confirmation that explicit consent will be sought, and the consent-based purposes whose consents
go stale (their fingerprint changed: the gate asks again).

:func:`compare_texts` does the same for the privacy texts, paragraph by paragraph.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from piwarden.policy.declaration import Category, Declaration, LegalBasis, Localized, Purpose, Recipient, region_name
from piwarden.policy.models import MaterialKind

SECTIONS = ("purposes", "categories", "recipients", "rights", "contact")

RIGHT_NAMES = {
    "access": gettext_lazy("Access your personal information"),
    "copy": gettext_lazy("Receive a copy of your personal information"),
    "correction": gettext_lazy("Correct or complete your personal information"),
    "deletion": gettext_lazy("Delete your personal information"),
    "restriction": gettext_lazy("Restrict or refuse processing"),
    "withdrawal": gettext_lazy("Withdraw your consent"),
    "explanation": gettext_lazy("Have our processing explained"),
    "cancellation": gettext_lazy("Cancel your account"),
    "deceased_relative": gettext_lazy("Rights of a deceased person's close relatives"),
    "complaint": gettext_lazy("Question or complain about this policy"),
}

BASIS_NAMES = {
    LegalBasis.CONSENT: gettext_lazy("your consent"),
    LegalBasis.CONTRACT: gettext_lazy("a contract or human-resources management"),
    LegalBasis.STATUTORY_DUTY: gettext_lazy("a legal duty"),
    LegalBasis.EMERGENCY: gettext_lazy("an emergency"),
    LegalBasis.PUBLIC_INTEREST_NEWS: gettext_lazy("news reporting in the public interest"),
    LegalBasis.DISCLOSED_INFORMATION: gettext_lazy("information already made public"),
    LegalBasis.OTHER_LAW: gettext_lazy("another law"),
}

KIND_NAMES = {
    MaterialKind.PURPOSES: gettext_lazy("the purposes, categories or use of personal information"),
    MaterialKind.CONTROLLER: gettext_lazy("the controller or its ownership (merger, acquisition, restructuring)"),
    MaterialKind.RECIPIENTS: gettext_lazy("the main recipients of sharing, transfer or public disclosure"),
    MaterialKind.RIGHTS: gettext_lazy("your rights and how to exercise them"),
    MaterialKind.CONTACT: gettext_lazy("the responsible department, contact or complaint channel"),
    MaterialKind.IMPACT_ASSESSMENT: gettext_lazy("a high risk found by a personal-information impact assessment"),
}

SECTION_NAMES = {
    "purposes": gettext_lazy("Purposes"),
    "categories": gettext_lazy("Categories of personal information"),
    "recipients": gettext_lazy("Recipients"),
    "rights": gettext_lazy("Your rights"),
    "contact": gettext_lazy("Controller and contact"),
}


@dataclass(frozen=True)
class Line:
    """One change: ``what`` is added, removed or changed; ``item`` names it in the reader's language."""

    what: str
    item: str
    before: str = ""
    after: str = ""


@dataclass(frozen=True)
class Section:
    id: str
    name: str
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Comparison:
    sections: tuple[Section, ...]
    kinds: frozenset[MaterialKind]
    reductions: tuple[str, ...] = ()  # English, for the operator
    stale_purposes: tuple[str, ...] = ()  # consent-based purposes whose consents must be asked again

    @property
    def changed(self) -> bool:
        return any(s.lines for s in self.sections)


def _by_id[T](items: Iterable[T], key: Callable[[T], str]) -> dict[str, T]:
    return {key(i): i for i in items}


def _keyed[T](
    old: Sequence[T],
    new: Sequence[T],
    key: Callable[[T], str],
    name: Callable[[T], str],
    details: Callable[[T, T], list[Line]],
) -> list[Line]:
    before, after = _by_id(old, key), _by_id(new, key)
    lines = [Line("added", name(after[k])) for k in after if k not in before]
    lines += [Line("removed", name(before[k])) for k in before if k not in after]
    for k in after:
        if k in before and before[k] != after[k]:
            lines += details(before[k], after[k]) or [Line("changed", name(after[k]))]
    return lines


def _text(value: Localized | None, language: str) -> str:
    return value.get(language) if value is not None else ""


def _purposes(old: Declaration, new: Declaration, language: str) -> list[Line]:
    def details(a: Purpose, b: Purpose) -> list[Line]:
        lines = []
        if a.name != b.name:
            lines.append(Line("changed", _text(b.name, language), _text(a.name, language), _text(b.name, language)))
        if a.legal_basis != b.legal_basis or a.basis_note != b.basis_note:
            lines.append(
                Line(
                    "changed",
                    _("Legal basis of “%(purpose)s”") % {"purpose": _text(b.name, language)},
                    str(BASIS_NAMES[a.legal_basis]),
                    str(BASIS_NAMES[b.legal_basis]),
                )
            )
        return lines

    return _keyed(old.purposes, new.purposes, lambda p: p.id, lambda p: _text(p.name, language), details)


def _retention(category: Category, language: str) -> str:
    after = _("then deleted") if category.after_retention == "delete" else _("then anonymised")
    return _("%(days)s days %(from)s, %(after)s") % {
        "days": category.retention_days,
        "from": _text(category.retention_from, language),
        "after": after,
    }


def _categories(old: Declaration, new: Declaration, language: str) -> list[Line]:
    def purpose_names(decl: Declaration, ids: list[str]) -> str:
        return "; ".join(_text(decl.purpose(p).name, language) for p in ids)

    def details(a: Category, b: Category) -> list[Line]:
        name = _text(b.name, language)
        lines = []
        if a.description != b.description:
            lines.append(
                Line(
                    "changed",
                    _("What “%(category)s” holds") % {"category": name},
                    _text(a.description, language),
                    _text(b.description, language),
                )
            )
        if _retention(a, language) != _retention(b, language):
            lines.append(
                Line(
                    "changed",
                    _("How long “%(category)s” is kept") % {"category": name},
                    _retention(a, language),
                    _retention(b, language),
                )
            )
        if a.purposes != b.purposes:
            lines.append(
                Line(
                    "changed",
                    _("What “%(category)s” is used for") % {"category": name},
                    purpose_names(old, a.purposes),
                    purpose_names(new, b.purposes),
                )
            )
        return lines

    lines = _keyed(old.categories, new.categories, lambda c: c.id, lambda c: _text(c.name, language), details)
    lines += _keyed(
        old.cookies,
        new.cookies,
        lambda c: c.name,
        lambda c: _("Cookie %(name)s") % {"name": c.name},
        lambda a, b: [
            Line(
                "changed",
                _("Cookie %(name)s") % {"name": b.name},
                f"{_text(a.purpose, language)} ({_text(a.lifetime, language)})",
                f"{_text(b.purpose, language)} ({_text(b.lifetime, language)})",
            )
        ],
    )
    if old.policy.storage_region != new.policy.storage_region:
        lines.append(
            Line(
                "changed",
                _("Where your information is stored"),
                region_name(old.policy.storage_region, language),
                region_name(new.policy.storage_region, language),
            )
        )
    return lines


def _recipients(old: Declaration, new: Declaration, language: str) -> list[Line]:
    def state(r: Recipient) -> str:
        return _("sharing enabled") if r.enabled else _("named, nothing shared yet")

    return _keyed(
        old.recipients,
        new.recipients,
        lambda r: r.id,
        lambda r: _text(r.name, language),
        lambda a, b: [
            Line(
                "changed",
                _text(b.name, language),
                f"{_text(a.name, language)} ({state(a)})",
                f"{_text(b.name, language)} ({state(b)})",
            )
        ],
    )


def _rights(old: Declaration, new: Declaration) -> list[Line]:
    lines = [Line("added", str(RIGHT_NAMES[r])) for r in new.rights.offered if r not in old.rights.offered]
    lines += [Line("removed", str(RIGHT_NAMES[r])) for r in old.rights.offered if r not in new.rights.offered]
    if old.rights.response_working_days != new.rights.response_working_days:
        lines.append(
            Line(
                "changed",
                _("Time to answer your request"),
                _("%(days)s working days") % {"days": old.rights.response_working_days},
                _("%(days)s working days") % {"days": new.rights.response_working_days},
            )
        )
    return lines


def _contact(old: Declaration, new: Declaration, language: str) -> tuple[list[Line], list[Line]]:
    """(the controller's name, the contact channels): kinds (2) and (5) of §十."""
    a, b = old.controller, new.controller
    controller = []
    if a.name != b.name:
        controller.append(Line("changed", _("Controller"), _text(a.name, language), _text(b.name, language)))
    contact = []
    for label, before, after in (
        (_("Address"), _text(a.address, language), _text(b.address, language)),
        (_("Hotline"), a.hotline, b.hotline),
        (_("E-mail"), a.email, b.email),
    ):
        if before != after:
            contact.append(Line("changed", label, before, after))
    return controller, contact


def compare(old: Declaration, new: Declaration, language: str = "en") -> Comparison:
    """What changed from ``old`` to ``new``, in ``language``, and what that makes material."""
    language = "en" if language.startswith("en") else "zh-hans"
    key = (old.digest, new.digest, language)
    found = _compared.get(key) if old.digest and new.digest else None
    if found is None:
        if len(_compared) >= 64:  # noqa: PLR2004  # versions x languages, with room; emptied, never grown
            _compared.clear()
        found = _compared[key] = _compare(old, new, language)
    return found


_compared: dict[tuple[str, str, str], Comparison] = {}


def _compare(old: Declaration, new: Declaration, language: str) -> Comparison:
    with translation.override(language):
        purposes = _purposes(old, new, language)
        categories = _categories(old, new, language)
        recipients = _recipients(old, new, language)
        rights = _rights(old, new)
        controller, contact = _contact(old, new, language)
        sections = tuple(
            Section(sid, str(SECTION_NAMES[sid]), tuple(lines))
            for sid, lines in (
                ("purposes", purposes),
                ("categories", categories),
                ("recipients", recipients),
                ("rights", rights),
                ("contact", controller + contact),
            )
        )
    kinds = {
        kind
        for kind, lines in (
            (MaterialKind.PURPOSES, purposes + categories),
            (MaterialKind.CONTROLLER, controller),
            (MaterialKind.RECIPIENTS, recipients),
            (MaterialKind.RIGHTS, rights),
            (MaterialKind.CONTACT, contact),
        )
        if lines
    }
    return Comparison(
        sections, frozenset(kinds), reductions=_reductions(old, new), stale_purposes=_stale_purposes(old, new)
    )


def _reductions(old: Declaration, new: Declaration) -> tuple[str, ...]:
    reduced = [f"the right {r!r} is no longer offered" for r in old.rights.offered if r not in new.rights.offered]
    if new.rights.response_working_days > old.rights.response_working_days:
        reduced.append(
            f"requests would be answered in {new.rights.response_working_days} working days instead of "
            f"{old.rights.response_working_days}"
        )
    return tuple(reduced)


def _stale_purposes(old: Declaration, new: Declaration) -> tuple[str, ...]:
    return tuple(
        p.id
        for p in new.purposes
        if p.legal_basis is LegalBasis.CONSENT
        and p.id in old.purpose_fingerprints
        and old.purpose_fingerprints[p.id] != new.purpose_fingerprints[p.id]
    )


# --- the texts --------------------------------------------------------------------------------

_BLOCK = re.compile(r"</?(?:p|li|h[1-6]|tr|section|table|ul|ol|div)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def paragraphs(markup: str) -> list[str]:
    """A text's readable paragraphs: block elements split it, tags go, whitespace is folded."""
    parts = (_TAG.sub("", chunk) for chunk in _BLOCK.split(markup))
    return [text for text in (" ".join(html.unescape(p).split()) for p in parts) if text]


@dataclass(frozen=True)
class TextChange:
    removed: tuple[str, ...]
    added: tuple[str, ...]


def compare_texts(old: str, new: str) -> tuple[TextChange, ...]:
    """Paragraph by paragraph: each run of removed paragraphs with the paragraphs that replaced it."""
    before, after = paragraphs(old), paragraphs(new)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    return tuple(
        TextChange(tuple(before[i1:i2]), tuple(after[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    )
