"""Every declared data category, exported and erased: one exporter and one eraser each (invariant 8).

pretix's data shredders are the model: the app that stores a category says, next to its models,
how to hand a person their data of that category (the *exporter*: a generator of records, one
row or file at a time) and what erasure does to it (the *eraser*).  Each app
does so in its ``personal_data.py`` module, which :class:`~piwarden.people.apps.PeopleConfig`
imports at start-up (``autodiscover_modules``, as the admin finds ``admin.py``); nothing is
wired through signals.

Whose data a category is decides what its two halves mean (:class:`Subject`):

* ``VISITOR``: about a :class:`~piwarden.people.models.Person`.  The exporter receives the
  :class:`~piwarden.processing.gate.Permit` that the gate granted for the purpose
  :data:`EXPORT_PURPOSE` (so it cannot run without one) and yields that person's records,
  decrypted.  :func:`export_person` opens the gate once for every visitor category and runs
  every exporter inside it.
* ``STAFF``: about a staff account (``auth.User``).  The exporter receives the user and yields
  that staff member's own records (:func:`export_staff`).  The gate decides about persons, so a
  staff export is not asked of it.
* ``NOBODY``: pseudonymous data that cannot be attributed to anyone we can name (rate-limit
  counters hold a keyed digest of an address we never kept).  Both halves are
  :class:`Unattributable`, with the reason.

A category that most people have nothing in (an account, a download history, a legal hold) declares
its rows of one person once (``rows``: a function of the person that returns the queryset, or
several whose union is the category), and its exporter reads through that same function, so the
filter is written once (its eraser, :meth:`Deletes.people`, deletes the rows of many people at once
by their keys, for the sweep's batches). :func:`export_person` calls it on ``OuterRef("pk")`` to ask
about all such categories in one statement (an ``EXISTS`` for each, :func:`held_by`) and runs only
the exporters of the categories found there, instead of a query each for nothing; the category's
section is still in the export, empty.

An eraser is one of three kinds, so that "nothing happens" is always a stated decision:

* :class:`Deletes`: deletes the subject's rows or files and returns how many;
* :class:`Keeps`: the law (or the audit trail) requires keeping them: the reason is stated, and
  an optional ``restrict`` step takes them out of use (withdrawing consents, deactivating an
  account) and returns how many it changed;
* :class:`Shredded`: erased by :func:`piwarden.people.actions.shred_person` itself (the data
  key destroyed, the look-up indexes cleared, the sealed copies of mail deleted), which
  :func:`~piwarden.people.actions.erase_person` runs last in the same transaction.

:func:`coverage_problems` compares the registry with the declaration; ``piwarden policy check``
and the system checks fail on any category without both halves.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils.translation import gettext_noop

from piwarden.policy.declaration import Declaration

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from piwarden.people.models import Person
    from piwarden.prepared import Param, PreparedSelect
    from piwarden.processing.gate import Permit

# The purpose every visitor export is asked of the gate for (policy/declaration.toml: PIPL 13(3),
# the controller's legal obligation to answer a request under PIPL 45).
EXPORT_PURPOSE = "answer_rights_request"
# The purpose of the notice that the site ceases operation (piwarden.cessation; a legal duty): it
# writes to the address held for another purpose.
CESSATION_NOTICE_PURPOSE = "cessation_notice"
# The notice of a security incident (piwarden.incidents; PIPL 57): likewise written to an address held
# for another purpose, and no reason to keep it.
INCIDENT_NOTICE_PURPOSE = "incident_notice"
# Purposes that use data held for other purposes and are no reason to keep any: a category that
# serves one of these besides a consent withdrawn is still held only on that consent.
NO_REASON_TO_KEEP = frozenset({EXPORT_PURPOSE, CESSATION_NOTICE_PURPOSE, INCIDENT_NOTICE_PURPOSE})

# One row or file of a category, as the person receives it: JSON-serialisable values.
Record = Mapping[str, Any]


class Subject(StrEnum):
    VISITOR = "visitor"
    STAFF = "staff"
    NOBODY = "nobody"


@dataclass(frozen=True)
class Unattributable:
    """Neither exported nor erased per person: nothing in the category can be tied to one."""

    reason: str


# Whom a category's ``rows`` are of: a Person (the exporter's ``permit.person``, the eraser's
# subject), a ``Param`` (an exporter's prepared statement) or ``OuterRef("pk")`` (held_by's probe).
type Whose = Person | Param | OuterRef

# A category's rows of one person: one queryset, or several (any holds some).
type Rows = Callable[[Whose], QuerySet[Any, Any] | tuple[QuerySet[Any, Any], ...]]
# Person's key → how many rows or files of theirs an eraser deleted or changed (absent: none).
Counts = Mapping[Any, int]
# A person's eraser for many people at once: set-based statements, whatever their number.
Many = Callable[[Sequence["Person"]], Counts]


def _one(many: Many) -> Callable[[Any], int]:
    """The eraser of one person, as the eraser of many people run on them alone (one code path)."""

    def erase(person: Person) -> int:
        return many([person]).get(person.pk, 0)

    return erase


@dataclass(frozen=True)
class Deletes:
    """Deletes the subject's rows or files of the category; returns how many.

    ``many`` (a person's category, :meth:`people`): the same for many people in a few set-based
    statements, with the count of each (the retention sweep's batches, :func:`erase_people_categories`)."""

    erase: Callable[[Any], int]
    many: Many | None = None

    @classmethod
    def people(cls, many: Many) -> Deletes:
        return cls(_one(many), many)


@dataclass(frozen=True)
class Keeps:
    """Kept, for the stated reason; ``restrict`` (if any) takes the rows out of use and counts them
    (``many``: for many people at once, as :class:`Deletes`)."""

    reason: str
    restrict: Callable[[Any], int] | None = None
    many: Many | None = None

    @classmethod
    def people(cls, reason: str, restrict: Many) -> Keeps:
        return cls(reason, _one(restrict), restrict)


@dataclass(frozen=True)
class Shredded:
    """Erased by the crypto-shredding step of the erasure (``shred_person``): what it does to the category."""

    how: str


Eraser = Deletes | Keeps | Shredded | Unattributable


@dataclass(frozen=True)
class Handler:
    """A category's exporter and eraser, as its app registered them."""

    category: str
    subject: Subject
    export: Callable[[Any], Iterator[Record]] | Unattributable
    erase: Eraser
    module: str
    rows: Rows | None = None


_handlers: dict[str, Handler] = {}
_probe: list[tuple[tuple[str, ...], PreparedSelect]] = []  # held_by's statement, built on first use


class RegistryError(Exception):
    """A category registered twice, or with halves that do not fit its subject."""


def register(
    category: str,
    *,
    subject: Subject,
    export: Callable[[Any], Iterator[Record]] | Unattributable,
    erase: Eraser,
    module: str,
    rows: Rows | None = None,
) -> None:
    """Register the exporter and eraser of ``category`` (called from an app's ``personal_data.py``).

    ``rows``: for a category most people hold nothing in, the person's rows of it, which its exporter
    reads too (see the module's text); the exporter then runs only for a person who holds some."""
    if category in _handlers:
        raise RegistryError(f"category {category!r} is registered twice ({_handlers[category].module}, {module})")
    unattributable = isinstance(export, Unattributable) or isinstance(erase, Unattributable)
    if unattributable != (subject is Subject.NOBODY):
        raise RegistryError(f"category {category!r}: only a category about nobody is Unattributable, and it is both")
    if isinstance(erase, Shredded) and subject is not Subject.VISITOR:
        raise RegistryError(f"category {category!r}: only a person's data is crypto-shredded")
    if rows is not None and subject is not Subject.VISITOR:
        raise RegistryError(f"category {category!r}: only a person's categories are looked up by their ``rows``")
    _handlers[category] = Handler(category, subject, export, erase, module, rows)
    _probe.clear()  # built again, with this category, on the next export


def handlers() -> Mapping[str, Handler]:
    return dict(_handlers)


def handlers_for(declaration: Declaration, subject: Subject) -> list[Handler]:
    """The registered handlers of ``subject``'s declared categories, in the declaration's order."""
    found = (_handlers.get(c.id) for c in declaration.categories)
    return [h for h in found if h is not None and h.subject is subject]


def coverage_problems(declaration: Declaration) -> list[str]:
    """One message per declared category without an exporter and eraser, or registered but undeclared."""
    declared = [c.id for c in declaration.categories]
    problems = [
        f"category {category!r}: has no exporter and no eraser (register both in the personal_data.py of the "
        f"app that stores it; an eraser may keep the data, saying why, but cannot be missing)"
        for category in declared
        if category not in _handlers
    ]
    problems += [
        f"category {category!r}: has an exporter and eraser ({handler.module}) but is not declared"
        for category, handler in sorted(_handlers.items())
        if category not in declared
    ]
    return problems


# --- running them ------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """What an export says about one category before its records: its id, and why it is empty."""

    category: str
    subject: Subject
    note: str = ""


def export_person(
    person: Person,
    declaration: Declaration,
    *,
    context: str,
    extra: Mapping[str, Any] | None = None,
    within: Callable[[Permit], object] | None = None,
) -> Iterator[Section | Record]:
    """Everything about ``person``, category by category: a :class:`Section`, then its records.

    Every declared category gets a section, so the export is complete by construction; a
    category about staff or about nobody says so instead of having records.  Nothing is read
    until the first item is asked for (outside any transaction of the caller's); then the gate
    is asked once for every visitor category for :data:`EXPORT_PURPOSE` (one durable
    transaction, one audit record of the basis, with ``extra`` in it), and that record commits
    before the first item is handed out.  So a consumer that stops early cannot roll back the
    record of what was read, and no transaction (on SQLite, the write lock) stays open while the
    consumer works.  A refusal (erased person, purpose not declared for a category) raises
    ``ProcessingRefused`` before anything is yielded.  ``within`` is a write that belongs to this
    use (the archive's row, whose category is one of the export's): it runs in the gate's
    transaction with the permit, so that the write and the record of the use commit together or
    not at all.

    The records are streamed (``gate.streamed``): the permit the gate granted is in force while
    each exporter reads, in chunks of rows, outside the gate's transaction, so that a person with
    100 000 records is never held in memory at once (the archive of :mod:`piwarden.rights.archive`
    needs this).  The recorded use covers that reading; an erasure that commits meanwhile deletes
    the rows and destroys the data key, so the remaining reads find nothing of the person (and the
    archive's write path refuses to finish).
    """
    from piwarden.processing import gate  # noqa: PLC0415  # the gate imports people.models; people.registry loads first

    visitor = handlers_for(declaration, Subject.VISITOR)
    use = gate.Use(context=context, extra={"categories": len(visitor), **(extra or {})})
    categories = {h.category for h in visitor}
    with gate.processing(person, EXPORT_PURPOSE, categories=categories, use=use) as granted:
        permit = granted  # the use is recorded when this commits, before anything is read or handed out
        if within is not None:
            within(permit)
    yield from gate.streamed(permit, _sections(declaration, permit))


def held_by(person: Person) -> frozenset[str]:
    """The categories registered with ``rows`` that ``person`` holds rows of: one statement,
    ``SELECT EXISTS (…), EXISTS (…), … FROM people_person WHERE id = %s``, compiled once."""
    if not _probe:
        _probe.append(_held_statement())
    categories, statement = _probe[0]
    if not categories:
        return frozenset()
    for row in statement.rows(person=person.pk, chunk=1):
        return frozenset(c for c, present in zip(categories, row, strict=True) if present)
    return frozenset()


def _held_statement() -> tuple[tuple[str, ...], PreparedSelect]:
    """The probe's statement, and the category of each of its columns (a category may have several)."""
    from django.db.models import UUIDField  # noqa: PLC0415

    from piwarden.people.models import Person  # noqa: PLC0415  # this module loads before the models
    from piwarden.prepared import Param, PreparedSelect  # noqa: PLC0415

    columns: list[tuple[str, QuerySet[Any, Any]]] = []
    for handler in _handlers.values():
        if handler.rows is not None:
            found = handler.rows(OuterRef("pk"))
            columns += [(handler.category, rows) for rows in (found if isinstance(found, tuple) else (found,))]

    def build() -> QuerySet[Any, Any]:
        flags = {f"held_{i}": Exists(rows) for i, (_, rows) in enumerate(columns)}
        return Person.objects.filter(pk=Param("person", UUIDField())).annotate(**flags).values_list(*flags)

    return tuple(category for category, _ in columns), PreparedSelect(build, streamed=False)


def _sections(declaration: Declaration, permit: Permit) -> Iterator[Section | Record]:
    held = held_by(permit.person)
    for category in declaration.categories:
        handler = _handlers.get(category.id)
        if handler is None:
            raise LookupError(f"category {category.id!r} has no exporter (piwarden policy check says so too)")
        if isinstance(handler.export, Unattributable):
            yield Section(category.id, handler.subject, handler.export.reason)
        elif handler.subject is not Subject.VISITOR:
            yield Section(
                category.id, handler.subject, gettext_noop("About the staff who run this website, not about visitors.")
            )
        else:
            yield Section(category.id, handler.subject)
            if handler.rows is None or handler.category in held:
                yield from handler.export(permit)


def export_staff(user: User, declaration: Declaration) -> Iterator[Section | Record]:
    """A staff member's own data, category by category (the staff categories only)."""
    for handler in handlers_for(declaration, Subject.STAFF):
        yield Section(handler.category, handler.subject)
        assert not isinstance(handler.export, Unattributable)  # noqa: S101  # register() refuses it for staff
        yield from handler.export(user)


def erase_categories(
    subject: Person | User, declaration: Declaration, kind: Subject, *, only: Collection[str] | None = None
) -> dict[str, int]:
    """Run every eraser of ``kind``'s categories on ``subject``, in the caller's transaction.

    Returns, per category, how many rows or files were deleted (:class:`Deletes`) or taken out of
    use (:class:`Keeps` with a restriction): counts only, never values, for the audit record.
    Categories erased by the crypto-shredding are left to it.  Erasers run last-declared first:
    data found through other data (queued tasks through the requests they name) is declared
    after it, so it is erased while what finds it is still there.  ``only``: these categories
    alone (a withdrawal of consent erases what was held on that consent only).
    """
    counts: dict[str, int] = {}
    for handler in reversed(handlers_for(declaration, kind)):
        if only is not None and handler.category not in only:
            continue
        eraser = handler.erase
        if isinstance(eraser, Deletes):
            counts[handler.category] = eraser.erase(subject)
        elif isinstance(eraser, Keeps) and eraser.restrict is not None:
            counts[handler.category] = eraser.restrict(subject)
    return counts


def erase_people_categories(
    people: Sequence[Person], declaration: Declaration, *, only: Collection[str] | None = None
) -> dict[Any, dict[str, int]]:
    """:func:`erase_categories` for many people at once, in the caller's transaction: each eraser
    with a ``many`` form runs once for them all (set-based statements), any other once a person.
    Returns each person's counts per category, as :func:`erase_categories` returns one person's."""
    counts: dict[Any, dict[str, int]] = {person.pk: {} for person in people}
    if not people:
        return counts
    for handler in reversed(handlers_for(declaration, Subject.VISITOR)):
        if only is not None and handler.category not in only:
            continue
        eraser = handler.erase
        if isinstance(eraser, Deletes):
            each, many = eraser.erase, eraser.many
        elif isinstance(eraser, Keeps) and eraser.restrict is not None:
            each, many = eraser.restrict, eraser.many
        else:
            continue
        if many is not None:
            found = many(people)
            for person in people:
                counts[person.pk][handler.category] = found.get(person.pk, 0)
        else:
            for person in people:
                counts[person.pk][handler.category] = each(person)
    return counts


def keys(people: Sequence[Person]) -> list[Any]:
    """The people's primary keys, for ``person_id__in``: a lookup on the keys compiles in a fraction
    of the time of one on the model instances (thousands of them in a batch of the sweep)."""
    return [person.pk for person in people]


def count_by(rows: QuerySet[Any, Any], person: str) -> dict[Any, int]:
    """How many of ``rows`` each person has (``person``: the lookup to their key): one grouped count."""
    return dict(rows.order_by().values_list(person).annotate(n=Count("pk")).values_list(person, "n"))


def delete_counted(rows: QuerySet[Any, Any], person: str) -> dict[Any, int]:
    """Delete ``rows`` and return how many each person had: one grouped count, then one set-based
    DELETE if there was anything."""
    counts = count_by(rows, person)
    if counts:
        rows.delete()
    return counts


# --- correction (PIPL 46) ------------------------------------------------------------------


class Index(StrEnum):
    """A blind index on the Person that a corrected field's value is looked up by."""

    EMAIL = "email"
    PHONE = "phone"


@dataclass(frozen=True)
class Correctable:
    """A declared field a person may have corrected: how a new value is checked, and where it goes.

    ``clean`` checks and normalises a new value exactly as the form that collected it does
    (raising Django's ``ValidationError`` with the form's messages); ``apply`` writes it to every
    row of the person that holds the field, inside the caller's permit, and returns
    (rows changed, rows that held it already); ``index`` names the Person's blind index to
    recompute from the new value, if the field has one.
    """

    field: str
    category: str
    clean: Callable[[str], str]
    apply: Callable[[Person, str], tuple[int, int]]
    index: Index | None = None


_correctables: dict[str, Correctable] = {}


def register_correctable(correctable: Correctable) -> None:
    """Called from an app's ``personal_data.py``, beside the exporter and eraser of the field's category."""
    if correctable.field in _correctables:
        raise RegistryError(f"field {correctable.field!r} is registered as correctable twice")
    _correctables[correctable.field] = correctable


def correctables() -> Mapping[str, Correctable]:
    return dict(_correctables)
