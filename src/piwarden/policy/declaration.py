"""Load and validate the privacy-policy declaration (``policy/declaration.toml``).

The declaration is the single source of what the site may collect and why.
It is parsed once per process and validated twice: by pydantic for shape
(types, required keys, allowed legal bases) and by ``_check_consistency`` for
references between sections (a category naming an unknown purpose, a role
granted a purpose for a category that does not declare it, a field declared
twice...).  Any problem
raises :class:`DeclarationError` whose message names the file, the key and
what is wrong; the app registry turns that into a refusal to start.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import babel
import pycountry
from django.conf import settings
from django.utils.translation import get_language
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class DeclarationError(Exception):
    """The declaration cannot be used; the message says where and why."""


class LegalBasis(StrEnum):
    """The bases of PIPL Art 13 (the seed's six exceptions, plus consent)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    STATUTORY_DUTY = "statutory_duty"
    EMERGENCY = "emergency"
    PUBLIC_INTEREST_NEWS = "public_interest_news"
    DISCLOSED_INFORMATION = "disclosed_information"
    OTHER_LAW = "other_law"


Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
# "<app_label>.<Model>.<field>" of any installed app (django_tasks_database.DBTaskResult.args_kwargs,
# otp_totp.TOTPDevice.t0).
FieldPath = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*\.[A-Z][A-Za-z0-9]*\.[a-z_][a-z0-9_]*$")]
# "<app_label>:<store>": a place outside the database where an app writes files (its AppConfig's
# ``file_stores``, see piwarden.policy.stores), e.g. "vault:outbox".
FileStorePath = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*:[a-z_][a-z0-9_]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Localized(_Strict):
    """A text in both languages; ``str()`` gives the active language's text."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    zh_hans: Annotated[str, Field(alias="zh-hans", min_length=1)]
    en: Annotated[str, Field(min_length=1)]

    def get(self, language: str | None) -> str:
        return self.en if (language or "").startswith("en") else self.zh_hans

    def __str__(self) -> str:
        return self.get(get_language())


class PolicyMeta(_Strict):
    version: Annotated[str, Field(min_length=1, max_length=20)]
    effective: datetime.date
    storage_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class Controller(_Strict):
    name: Localized
    address: Localized
    hotline: Annotated[str, Field(min_length=3, max_length=30)]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class Children(_Strict):
    age_threshold: Annotated[int, Field(ge=1, le=18)]
    # Who answers for children's personal information (CHD-02), reached through the controller's contacts.
    officer: Localized


RightId = Literal[
    "access",
    "copy",
    "correction",
    "deletion",
    "restriction",
    "withdrawal",
    "explanation",
    "cancellation",
    "deceased_relative",
    "complaint",
]


class Rights(_Strict):
    """The rights the policy offers, and how soon a request is answered (policy §六).

    A version that removes one of ``offered`` or lengthens ``response_working_days`` reduces
    people's rights: ``piwarden policy publish`` refuses it unless the operator confirms that
    explicit consent will be sought (piwarden.policy.changes).
    """

    offered: Annotated[list[RightId], Field(min_length=1)]
    response_working_days: Annotated[int, Field(ge=1, le=60)]


class Purpose(_Strict):
    id: Identifier
    name: Localized
    legal_basis: LegalBasis
    basis_note: Localized | None = None
    # How the staff console names the purpose when a reveal is asked for it (the visitor-facing
    # name speaks to the person: "answering *your* request").
    staff_name: Localized | None = None
    # Restriction (PIPL 44, 47 para 2) stops everything except storage and
    # security measures; purposes marked here keep running for restricted people.
    survives_restriction: bool = False
    # Uses data held for other purposes and is never a reason to keep it (telling a person of a
    # change to this policy): withdrawing the consent the data rests on deletes it all the same.
    incidental: bool = False

    @model_validator(mode="after")
    def _non_consent_basis_is_explained(self) -> Purpose:
        if self.legal_basis is not LegalBasis.CONSENT and self.basis_note is None:
            raise ValueError(f"purpose {self.id!r} uses basis {self.legal_basis.value!r} and needs a basis_note")
        return self


class Category(_Strict):
    id: Identifier
    name: Localized
    description: Localized
    purposes: Annotated[list[Identifier], Field(min_length=1)]
    encrypted: bool
    unencrypted_reason: str | None = None
    retention_days: Annotated[int, Field(ge=1, le=36500)]
    retention_from: Localized
    after_retention: Literal["delete", "anonymise"]
    fields: Annotated[list[FieldPath], Field(default_factory=list)]
    files: Annotated[list[FileStorePath], Field(default_factory=list)]
    # A network log the Cybersecurity Law keeps at least six months (RET-04): never swept earlier,
    # and kept (restricted) when the person asks for deletion (piwarden.retention.rules).
    network_log: bool = False

    @model_validator(mode="after")
    def _plaintext_is_justified(self) -> Category:
        if not self.encrypted and not self.unencrypted_reason:
            raise ValueError(f"category {self.id!r} is not encrypted and gives no unencrypted_reason")
        return self

    @model_validator(mode="after")
    def _stored_somewhere(self) -> Category:
        if not self.fields and not self.files:
            raise ValueError(f"category {self.id!r} names no fields and no files: where is it stored?")
        return self


class NonPersonal(_Strict):
    """Fields and file stores that hold no personal information, and why.

    The reason is what a reviewer checks the classification against ("random
    tokens and our own timestamps"), so an entry without one is refused.
    """

    reason: Annotated[str, Field(min_length=20)]
    fields: Annotated[list[FieldPath], Field(default_factory=list)]
    files: Annotated[list[FileStorePath], Field(default_factory=list)]

    @model_validator(mode="after")
    def _names_something(self) -> NonPersonal:
        if not self.fields and not self.files:
            raise ValueError("a non_personal entry names no fields and no files")
        return self


class Choice(_Strict):
    id: Identifier
    name: Localized


class Recipient(_Strict):
    id: Identifier
    kind: Literal["affiliate", "processor", "third_party"]
    name: Localized
    enabled: bool


class Cookie(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    # The consent banner's categories: essential cookies are set without asking, the others only
    # once the visitor allowed their category (piwarden.consent.cookies).
    category: Literal["essential", "functional", "analytics"]
    purpose: Localized
    lifetime: Localized


class Role(_Strict):
    """A staff role: what it may reveal, for which purpose, and whether it reads the audit log.

    ``reveal`` grants purposes per category (``{consultation = ["respond_inquiry"]}``): a grant is a
    (category, purpose) pair, and start-up refuses a pair whose category does not declare that
    purpose, so no role can be given more than the policy promises visitors.
    """

    id: Identifier
    name: Localized
    reveal: dict[Identifier, list[Identifier]] = Field(default_factory=dict)
    read_audit: bool
    # May handle rights requests in the staff queue (assign, extend, refuse, approve, complete).
    handle_rights: bool = False
    # May read the trace of the privacy texts' promises to code and tests (the back office's promises page).
    trace_promises: bool = False
    # Reads the monitoring's alerts and the masked security events, and is e-mailed each alert.
    monitor_security: bool = False
    # Reviews the refusals of the public site's risk rules (rate limits, blocks, CAPTCHA) that a
    # person asked to have reviewed, and lifts or upholds them with a reason (PIPL 24).
    review_security_refusals: bool = False
    # A role that may reveal consultation requests sees those assigned to its holder; with
    # ``all_inquiries`` every one, and with ``assign_inquiries`` it gives them to staff too.
    all_inquiries: bool = False
    assign_inquiries: bool = False
    # May open the staff page: create staff accounts, suspend and reactivate them, change roles.
    manage_staff: bool = False
    # May approve or decline another staff member's request for a time-limited grant.
    approve_grants: bool = False
    # What this role may *ask* to reveal, per category and purpose like ``reveal``: nothing until
    # a second person approves a time-limited grant (the administrator's least privilege).
    grantable: dict[Identifier, list[Identifier]] = Field(default_factory=dict)
    # May run access reviews: open a campaign, confirm or revoke others' access (never their own).
    review_access: bool = False
    # May publish the downloadable resources (piwarden.downloads): upload, edit and withdraw them.
    manage_downloads: bool = False
    # May record staff members' training (never their own) and see whose attestation is due.
    record_training: bool = False
    # May keep the incident register (policy §五.6): record incidents, move them through the plan,
    # report to the regulator and notify the persons affected.
    handle_incidents: bool = False
    # Sees the data of a person marked as a child's (policy §八, CHD-03): without it, a child's
    # consultation requests are hidden; with it, each opening is audited.
    see_children_data: bool = False
    # May flag a person's data (a consultation request) as a child's collected without a guardian's
    # consent, which deletes it promptly (CHD-04).
    flag_child_data: bool = False
    # May place and lift legal holds, which keep data past its retention (piwarden.retention).
    place_holds: bool = False

    @property
    def reveal_categories(self) -> list[str]:
        return [category for category, purposes in self.reveal.items() if purposes]

    def may_reveal(self, category: str, purpose: str) -> bool:
        return purpose in self.reveal.get(category, ())

    def purposes_for(self, categories: Iterable[str]) -> list[str]:
        """The purposes this role may reveal every one of ``categories`` for (declaration order)."""
        wanted = list(categories)
        if not wanted:
            return []
        first, *rest = (self.reveal.get(c, []) for c in wanted)
        return [p for p in first if all(p in other for other in rest)]


class Declaration(_Strict):
    policy: PolicyMeta
    controller: Controller
    children: Children
    rights: Rights
    purposes: Annotated[list[Purpose], Field(min_length=1)]
    categories: Annotated[list[Category], Field(min_length=1)]
    non_personal: list[NonPersonal]
    industries: Annotated[list[Choice], Field(min_length=1)]
    products: Annotated[list[Choice], Field(min_length=1)]
    recipients: list[Recipient]
    cookies: list[Cookie]
    roles: Annotated[list[Role], Field(min_length=1)]

    # Filled by load_declaration(), not by the file.
    digest: str = ""

    # -- look-ups used across the code -------------------------------------

    @property
    def version(self) -> str:
        return self.policy.version

    @property
    def effective(self) -> datetime.date:
        return self.policy.effective

    @property
    def storage_region_name(self) -> str:
        return region_name(self.policy.storage_region, get_language())

    @functools.cached_property  # the model is frozen: computed once, read on every page
    def cookies_version(self) -> str:
        """The fingerprint of the ``[[cookies]]`` declaration a visitor's cookie choice was made under.

        Any change to a cookie's name, category, purpose or lifetime changes it, and the banner
        asks again (CON-03); a refusal alone never does (CON-05).
        """
        return _digest([c.model_dump(mode="json") for c in self.cookies])[:16]

    @functools.cached_property  # the model is frozen: computed once, asked on every consent
    def purpose_fingerprints(self) -> Mapping[str, str]:
        """Each purpose's fingerprint: it changes whenever what a person agreed to changes (CON-03).

        It covers the purpose (its id, name and legal basis) *and* every category of data it is
        declared for: the category's name, what it holds (its description) and how long it is kept
        (retention days, from when, and what happens after).  A new category under an old purpose,
        a category that now holds more, or a longer retention makes the consents given before stale,
        and the gate asks again (PIPL 14 para 2).  Field paths are left out: renaming a column
        changes nothing the person was shown.
        """
        kept = {"id", "name", "description", "retention_days", "retention_from", "after_retention"}
        return {
            purpose.id: _digest(
                {
                    "purpose": purpose.model_dump(mode="json", include={"id", "name", "legal_basis"}),
                    "categories": [
                        c.model_dump(mode="json", include=kept)
                        for c in sorted(self.categories_for_purpose(purpose.id), key=lambda c: c.id)
                    ],
                }
            )
            for purpose in self.purposes
        }

    def purpose_fingerprint(self, purpose_id: str) -> str:
        return self.purpose_fingerprints[purpose_id]

    def purpose(self, purpose_id: str) -> Purpose:
        for purpose in self.purposes:
            if purpose.id == purpose_id:
                return purpose
        raise KeyError(purpose_id)

    def category(self, category_id: str) -> Category:
        for category in self.categories:
            if category.id == category_id:
                return category
        raise KeyError(category_id)

    def role(self, role_id: str) -> Role:
        for role in self.roles:
            if role.id == role_id:
                return role
        raise KeyError(role_id)

    def category_of_field(self, path: str) -> Category | None:
        for category in self.categories:
            if path in category.fields:
                return category
        return None

    def categories_for_purpose(self, purpose_id: str) -> list[Category]:
        return [c for c in self.categories if purpose_id in c.purposes]

    def category_of_store(self, store: str) -> Category | None:
        """The category whose files live in ``store`` ("vault:outbox"), if it holds personal data."""
        for category in self.categories:
            if store in category.files:
                return category
        return None

    @property
    def non_personal_fields(self) -> list[str]:
        return [f for entry in self.non_personal for f in entry.fields]

    @property
    def non_personal_files(self) -> list[str]:
        return [f for entry in self.non_personal for f in entry.files]


def _digest(data: Any) -> str:
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _duplicates(values: list[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({v for v in values if v in seen or seen.add(v)})  # type: ignore[func-returns-value]  # set.add returns None: the idiom marks first sightings


def _check_consistency(decl: Declaration) -> list[str]:
    """Cross-references the schema cannot express; one message per problem."""
    return _check_unique_ids(decl) + _check_references(decl)


def _check_unique_ids(decl: Declaration) -> list[str]:
    problems: list[str] = []
    for section, ids in (
        ("purposes", [p.id for p in decl.purposes]),
        ("categories", [c.id for c in decl.categories]),
        ("roles", [r.id for r in decl.roles]),
        ("recipients", [r.id for r in decl.recipients]),
        ("industries", [i.id for i in decl.industries]),
        ("products", [p.id for p in decl.products]),
        ("cookies", [c.name for c in decl.cookies]),
    ):
        problems += [f"{section}: id {dup!r} is declared more than once" for dup in _duplicates(ids)]
    places: dict[tuple[str, str], list[str]] = {}
    for c in decl.categories:
        for f in c.fields:
            places.setdefault(("field", f), []).append(f"categories.{c.id}.fields")
        for f in c.files:
            places.setdefault(("file store", f), []).append(f"categories.{c.id}.files")
    for i, entry in enumerate(decl.non_personal):
        for f in entry.fields:
            places.setdefault(("field", f), []).append(f"non_personal[{i}].fields")
        for f in entry.files:
            places.setdefault(("file store", f), []).append(f"non_personal[{i}].files")
    problems += [
        f"{' and '.join(where)}: {kind} {path!r} is declared more than once"
        for (kind, path), where in sorted(places.items())
        if len(where) > 1
    ]
    return problems


def _check_references(decl: Declaration) -> list[str]:
    purpose_ids = {p.id for p in decl.purposes}
    problems = [
        f"categories.{c.id}.purposes: unknown purpose {p!r}"
        for c in decl.categories
        for p in c.purposes
        if p not in purpose_ids
    ]
    problems += _check_role_grants(decl)
    if pycountry.countries.get(alpha_2=decl.policy.storage_region) is None:
        problems.append(f"policy.storage_region: {decl.policy.storage_region!r} is not an ISO 3166 country code")
    return problems


def _check_role_grants(decl: Declaration) -> list[str]:
    """A role may reveal a category only for a purpose that category declares (purpose binding)."""
    purpose_ids = {p.id for p in decl.purposes}
    declared = {c.id: c.purposes for c in decl.categories}
    problems: list[str] = []
    for role in decl.roles:
        if role.assign_inquiries and not role.all_inquiries:
            problems.append(
                f"roles.{role.id}.assign_inquiries: a role that assigns requests must see them all (all_inquiries)"
            )
        for key, pairs in (("reveal", role.reveal), ("grantable", role.grantable)):
            for category, purposes in pairs.items():
                if category not in declared:
                    problems.append(f"roles.{role.id}.{key}: unknown category {category!r}")
                    continue
                for purpose in purposes:
                    if purpose not in purpose_ids:
                        problems.append(f"roles.{role.id}.{key}.{category}: unknown purpose {purpose!r}")
                    elif purpose not in declared[category]:
                        problems.append(
                            f"roles.{role.id}.{key}.{category}: grants purpose {purpose!r}, which category "
                            f"{category!r} does not declare (categories.{category}.purposes = {declared[category]})"
                        )
    return problems


def _format_location(loc: tuple[str | int, ...], raw: dict[str, Any]) -> str:
    """Turn pydantic's ('categories', 2, 'purposes') into 'categories[2] (id "x").purposes'."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) and "id" in node[item]:
                label += f" (id {node[item]['id']!r})"
            parts.append(label)
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(("." if parts else "") + item)
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def parse_declaration(path: Path) -> Declaration:
    """Parse and validate one declaration file; raise DeclarationError on any problem."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DeclarationError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        raw = tomllib.loads(blob.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DeclarationError(f"{path}: is not valid TOML: {exc}") from None
    decl = validate_declaration(raw, source=str(path))
    texts = sorted((path.parent / "texts").rglob("*.html"))
    digest = hashlib.sha256(blob)
    for text in texts:
        digest.update(text.read_bytes())
    return decl.model_copy(update={"digest": digest.hexdigest()})


def validate_declaration(raw: dict[str, Any], *, source: str) -> Declaration:
    """Validate a parsed declaration (shape, then cross-references); ``source`` prefixes each message."""
    try:
        decl = Declaration.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        lines = [f"{source}: {_format_location(err['loc'], raw)}: {err['msg']}" for err in errors]
        raise DeclarationError("\n".join(lines)) from None
    problems = _check_consistency(decl)
    if problems:
        raise DeclarationError("\n".join(f"{source}: {p}" for p in problems))
    return decl


@functools.cache
def load_declaration() -> Declaration:
    """The declaration in force for this process (``settings.POLICY_DIR``)."""
    return parse_declaration(Path(settings.POLICY_DIR) / "declaration.toml")


def region_name(code: str, language: str | None) -> str:
    """The country or region's name in the page's language: CLDR's (Babel), PRC naming for TW/HK/MO.

    An unknown code is shown as it is (a staff page must still show what was stored).
    """
    return region_names(language).get(code, code)


def region_names(language: str | None) -> Mapping[str, str]:
    """Every ISO 3166-1 code (pycountry's list) → its name in ``language``; built once per language."""
    return _region_names("en" if (language or "").startswith("en") else "zh-hans")


# The one convention a company in mainland China must follow for these regions, in both
# languages: CLDR's own names ("台湾", "Hong Kong SAR China") do not follow it.
_PRC_NAMES = {
    "zh-hans": {"TW": "中国台湾", "HK": "中国香港", "MO": "中国澳门"},
    "en": {"TW": "Taiwan, China", "HK": "Hong Kong SAR, China", "MO": "Macao SAR, China"},
}


@functools.cache
def _region_names(language: Literal["en", "zh-hans"]) -> Mapping[str, str]:
    # CLDR (through Babel) rather than pycountry's translations: pycountry's zh_CN catalogue
    # carries misspellings (柬埔塞 for 柬埔寨) and has no English short names.
    territories = babel.Locale.parse("en" if language == "en" else "zh_Hans_CN").territories
    names = {c.alpha_2: str(territories.get(c.alpha_2, c.name)) for c in pycountry.countries}
    names.update(_PRC_NAMES[language])
    return names
