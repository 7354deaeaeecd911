"""The processing gate: may this person's data of these categories be used for this purpose?

Every use of personal data for a purpose (storing a request, answering it, e-mailing,
revealing to staff, sharing, statistics, transfer) goes through :func:`processing`, the one
entry point.  It decides on (person, purpose, categories) and says *why* in a
:class:`Decision`:

* the purpose is not declared → refused;
* a category is not declared, or does not list the purpose → refused (purpose binding: data
  collected to answer a request is not read "for security" because some other category
  serves security, PIPL 6 and 14);
* the person's data was erased → refused;
* the person restricted processing → refused (PIPL 44), except for the purposes the
  declaration marks ``survives_restriction`` (storage and security, PIPL 47 para 2);
* the purpose rests on consent → allowed only with an active consent whose fingerprint
  matches the purpose as declared *now* (a changed purpose needs re-consent, PIPL 14(2));
  separate consent is required where the purpose demands it; for the visitor's histories the
  consent is their browser's cookie choice (:class:`BrowserConsent`);
* the purpose rests on another PIPL Art 13 basis → allowed, and the use of that basis is
  written to the audit log.

Every refusal and every use of a non-consent basis is recorded (a refusal for the person's own
restriction or erasure, met again at each of their own visits, once per choice:
:attr:`Use.refused_once`).  The gate owns the
transaction: it opens a *durable* one, so it cannot run inside a caller's transaction; a
refusal is committed before :class:`ProcessingRefused` reaches the caller, and no rollback of
the caller's can take the record back.  An allowed use runs as the body of the ``with``
block, in the same transaction as its record: if the body fails, nothing was used and the
record goes with it.

A write path that creates what it uses in the same act hands the gate two things, so that
one transaction holds everything (the consultation submission does both):

* the person as a function (finding or creating them), called inside the gate's transaction
  (a person given as an object has their restriction and erasure read again there); a function
  that already knows whom it will return says so in a ``person`` attribute
  (``people.actions.NewPerson``), so that the consent record is made before the transaction;
* the consent this act gives (:class:`GivenConsent`), recorded after the person's own choices
  (erased, restricted) were checked, and counted as the consent the purpose rests on.

Some processing concerns no stored person yet: a child's sign-up waits for a guardian's consent
sealed under a key of its own, tied to no person (CHD-01), and the guardian's address in it is
read to e-mail them.  :func:`unattributed` is the gate's form for that: it decides on the purpose
and the categories alone (declared, bound, and resting on a basis other than consent, which
nobody stored could have given), records the use under its basis or the refusal with no person,
and runs the use in the same transaction, as :func:`processing` does.  There is no person whose
restriction or erasure could be read: whoever asks for either is a stored person.
A use that writes many people's rows at once (the page views waiting in a process) names them
all (:class:`Each`): the gate reads and locks them in one statement, decides for each person
exactly as for one, records each decision as it records one, and runs the body once, in the same
transaction, with the permits of those allowed (:class:`Permits`).  One transaction instead of
one per person; a refusal still survives the body's failure.

There is no side-effect-free form: nothing shows a decision without using the data.  A page
that must one day (a rights portal listing what may still be done) should get it here, from
the same rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

from django.db import transaction
from django.db.models import UUIDField
from django.utils.translation import gettext_noop

from piwarden.audit.log import ActorKind, EventType, batched, record_event
from piwarden.audit.models import AuditEvent
from piwarden.consent.actions import PreparedConsent, prepare_consent
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.people.models import Person
from piwarden.policy.declaration import Declaration, LegalBasis, Purpose, load_declaration
from piwarden.prepared import Param, PreparedSelect

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class Decision:
    allowed: bool
    purpose: str
    basis: str
    reason: str
    category: str = ""

    def __bool__(self) -> bool:
        return self.allowed


class ProcessingRefused(Exception):
    def __init__(self, decision: Decision) -> None:
        super().__init__(f"processing for {decision.purpose!r} refused: {decision.reason}")
        self.decision = decision


@dataclass(frozen=True)
class Use:
    """Who uses the data and how the attempt appears in the audit log.

    ``stated_reason`` is a staff member's own words: it goes to the event's reason column (the
    gate's reason is then in ``extra["refusal"]``).  ``refused_event`` lets a staff reveal keep
    its own event type, so that one attempt is one row.

    ``refused_once`` is for a use the person's own visits make (their histories): a refusal for
    their own choice (their restriction, their erasure) is recorded once per choice, context and
    category, not again at each visit.  The first proves the choice is honoured; the repeats
    would log only when the person came back, which is the very record their choice stops.
    Every other refusal (a staff member's, a consent missing, an undeclared use) is recorded
    each time.
    """

    context: str
    actor: AbstractBaseUser | None = None
    actor_kind: ActorKind | None = None
    fields: Collection[str] = ()
    stated_reason: str = ""
    refused_event: EventType = EventType.PROCESSING_REFUSED
    extra: Mapping[str, Any] = field(default_factory=dict)
    refused_once: bool = False


@dataclass(frozen=True)
class GivenConsent:
    """The consent the person gives in the very act that uses it: what they were shown, where.

    Recorded (through ``consent.actions.prepare_consent``) only once the gate allows the use, so a
    person who erased or restricted their data leaves no new consent behind.
    """

    channel: str
    language: str
    shown_text: str
    kind: ConsentKind = ConsentKind.ORDINARY


@dataclass(frozen=True)
class BrowserConsent:
    """The consent a purpose rests on is the visitor's cookie choice: ``category`` (functional or
    analytics) was allowed in the browser that made the request (``consent.cookies.allows``, which
    honours Global Privacy Control), and the choice is in the cookie-consent ledger.  The gate cannot
    read a browser's choice; it decides everything else (declared, bound, erased, restricted)."""

    category: Literal["functional", "analytics"]


@dataclass(frozen=True)
class Permit:
    """An allowed use, as the body of :func:`processing` receives it."""

    person: Person
    decision: Decision
    consent: ConsentRecord | None = None  # the record of a GivenConsent


@dataclass(frozen=True)
class Unattributed:
    """An allowed use of data about no stored person yet, as the body of :func:`unattributed` receives it."""

    decision: Decision


@dataclass(frozen=True)
class Each:
    """Several people, one use each, decided in one pass: their ids (see the module's docstring)."""

    people: Collection[uuid.UUID]


@dataclass(frozen=True)
class Permits:
    """The allowed uses of an :class:`Each`, by person id: a person refused (or not found) is absent."""

    by_person: Mapping[uuid.UUID, Permit]

    def __contains__(self, person_id: object) -> bool:
        return person_id in self.by_person

    def __len__(self) -> int:
        return len(self.by_person)


_in_force: ContextVar[Permit | Unattributed | None] = ContextVar("piwarden_permit", default=None)


def permit_in_force() -> Permit | Unattributed | None:
    """The permit whose use is running in this context, if any (for observers of the vault)."""
    return _in_force.get()


@overload
def processing(
    person: Person | Callable[[], Person],
    purpose_id: str,
    *,
    categories: Collection[str],
    use: Use,
    separate: bool = False,
    consent: GivenConsent | None = None,
    browser: BrowserConsent | None = None,
) -> AbstractContextManager[Permit]: ...


@overload
def processing(
    person: Each,
    purpose_id: str,
    *,
    categories: Collection[str],
    use: Use,
    separate: bool = False,
    browser: BrowserConsent | None = None,
) -> AbstractContextManager[Permits]: ...


def processing(
    person: Person | Callable[[], Person] | Each,
    purpose_id: str,
    *,
    categories: Collection[str],
    use: Use,
    separate: bool = False,
    consent: GivenConsent | None = None,
    browser: BrowserConsent | None = None,
) -> AbstractContextManager[Permit] | AbstractContextManager[Permits]:
    """Ask the gate, record the answer, and run the caller's use of the data in one transaction.

    ::

        with gate.processing(person, "respond_inquiry", categories={"consultation"}, use=Use("...")) as permit:
            ...  # read or send the data; an exception here rolls the use (and its record) back

    On refusal the refusal is committed first, then :class:`ProcessingRefused` is raised; the
    body never runs.  Calling this inside another transaction is a programming error (Django
    raises ``RuntimeError``), because that caller's rollback would otherwise erase the refusal.

    Asked for :class:`Each` of several people, the body runs once with the :class:`Permits` of
    those allowed (none, maybe) and nothing is raised for those refused: their refusals are
    recorded, and committed even if the body fails.  A consent is given by one person in one act:
    never with :class:`Each`.
    """
    if isinstance(person, Each):
        if consent is not None:
            raise ValueError("a consent is given by one person in one act, never for several people at once")
        return _each(person, purpose_id, categories=categories, use=use, separate=separate, browser=browser)
    return _one(person, purpose_id, categories=categories, use=use, separate=separate, consent=consent, browser=browser)


@contextmanager
def _one(
    person: Person | Callable[[], Person],
    purpose_id: str,
    *,
    categories: Collection[str],
    use: Use,
    separate: bool,
    consent: GivenConsent | None,
    browser: BrowserConsent | None,
) -> Iterator[Permit]:
    # The use's audit events (the gate's own, the person's creation, the consent, the use) are
    # written in one statement at the end of the transaction.
    # The consent given in this act is made before the transaction when the person is known
    # (SQLite's one write lock is held from BEGIN to COMMIT): inside, only its INSERT runs.
    known = person if isinstance(person, Person) else getattr(person, "person", None)
    prepared = _prepare_given(known, purpose_id, consent) if isinstance(known, Person) else None
    with transaction.atomic(durable=True), batched():
        subject = _as_of_now(person) if isinstance(person, Person) else person()
        decision = _decide(subject, purpose_id, categories, separate=separate, given=consent, browser=browser)
        if decision.allowed:
            _record(decision, subject, use)
        else:
            _record_refusals([(subject, decision)], use)
        if decision.allowed:
            if prepared is None or subject is not known:
                prepared = _prepare_given(subject, purpose_id, consent)
            permit = Permit(subject, decision, prepared.record() if prepared is not None else None)
            with _running(permit):
                yield permit
            return
    raise ProcessingRefused(decision)


@contextmanager
def unattributed(purpose_id: str, *, categories: Collection[str], use: Use) -> Iterator[Unattributed]:
    """The gate for processing that concerns no stored person yet (see the module's text).

    ::

        with gate.unattributed("children_protection", categories={"guardian_contacts"}, use=Use("...")):
            ...  # read the data sealed under a key of no person's; an exception rolls the record back

    Refused when the purpose is not declared, a category is not declared or does not list it, or
    the purpose rests on consent; the refusal is committed (about no person), then
    :class:`ProcessingRefused` is raised.  An allowed use is recorded under its basis, about no
    person, in the transaction the body runs in.  Like :func:`processing`, it cannot run inside a
    caller's transaction.
    """
    with transaction.atomic(durable=True), batched():
        decision = _decide_unattributed(purpose_id, categories)
        _record(decision, None, use)
        if decision.allowed:
            permit = Unattributed(decision)
            with _running(permit):
                yield permit
            return
    raise ProcessingRefused(decision)


@contextmanager
def _each(
    people: Each,
    purpose_id: str,
    *,
    categories: Collection[str],
    use: Use,
    separate: bool,
    browser: BrowserConsent | None,
) -> Iterator[Permits]:
    """The decisions for several people in one transaction (see :func:`processing`).

    The refusals are written first; if any was, the body runs in a savepoint, so that its
    failure rolls back its own writes (and the records of the uses allowed) but not the refusals,
    which commit before the failure reaches the caller.  No single permit is in force during the
    body (:func:`permit_in_force`): a body that reads the vault asks for one person at a time.
    """
    failure: Exception | None = None
    with transaction.atomic(durable=True):
        with batched():
            decided = [
                (subject, _decide(subject, purpose_id, categories, separate=separate, given=None, browser=browser))
                for subject in _all_as_of_now(people.people)
            ]
            refused = _record_refusals([(subject, decision) for subject, decision in decided if not decision], use)
        permits = Permits({subject.pk: Permit(subject, decision) for subject, decision in decided if decision})
        try:
            with transaction.atomic() if refused else nullcontext(), batched():
                for permit in permits.by_person.values():
                    _record(permit.decision, permit.person, use)
                yield permits
        except Exception as exc:
            if not refused:
                raise
            failure = exc  # the refusals commit with the transaction; then the caller hears of it
    if failure is not None:
        raise failure


def streamed[T](permit: Permit, items: Iterator[T]) -> Iterator[T]:
    """The reading of an allowed use, streamed after the gate's transaction (and its record) committed.

    An export hands out records one by one to a consumer that may stop at any time: the use is
    recorded first (its ``with processing(...)`` block commits before anything is read), and the
    records are read afterwards, in chunks, outside any transaction.  While each item is read,
    ``permit`` is in force (:func:`permit_in_force`), exactly as inside the ``with`` block; while the
    consumer works between two items, it is not.
    """
    while True:
        with _running(permit):
            try:
                item = next(items)
            except StopIteration:
                return
        yield item


@contextmanager
def _running(permit: Permit | Unattributed) -> Iterator[None]:
    """``permit`` in force (:func:`permit_in_force`) while the block runs."""
    token = _in_force.set(permit)
    try:
        yield
    finally:
        _in_force.reset(token)


ERASED = gettext_noop("the person's data has been erased")
RESTRICTED = gettext_noop("the person has restricted processing of their data")

_CHOICES = PreparedSelect(
    lambda: (
        Person.objects.select_for_update(no_key=True)
        .filter(pk=Param("person", UUIDField()))
        .values_list("restricted_at", "erased_at")
    ),
    streamed=False,
)


def _as_of_now(person: Person) -> Person:
    """``person`` with their own choices (restricted, erased) as stored now, read in the gate's
    transaction: the caller may have loaded them before a restriction or an erasure committed.

    The row is locked until the use commits (PostgreSQL's ``FOR NO KEY UPDATE``; SQLite's one
    write lock is held already): an erasure that has locked the person (``erase_unheld``,
    ``erase_person``) is waited for and then seen, and one that comes later waits for the use and
    then sees its rows.  Read without the lock, a use could write under a data key that an erasure
    committing at the same moment destroys.  (What ``refresh_from_db(fields=...)`` does, with the
    statement compiled once: every use of personal data passes here.)
    """
    found = list(_CHOICES.rows(person=person.pk))
    if not found:
        raise Person.DoesNotExist(f"Person {person.pk} does not exist.")
    person.restricted_at, person.erased_at = found[0]
    return person


def _all_as_of_now(people: Collection[uuid.UUID]) -> list[Person]:
    """:func:`_as_of_now` for several people in one statement, each row locked (in the order of
    their keys, so that two such reads never wait for each other crosswise); an id not found (a
    person deleted since) is left out."""
    if not people:
        return []
    return list(
        Person.objects.select_for_update(no_key=True)
        .filter(pk__in=people)
        .order_by("pk")
        .only("pk", "restricted_at", "erased_at")
    )


def _decide(
    person: Person,
    purpose_id: str,
    categories: Collection[str],
    *,
    separate: bool,
    given: GivenConsent | None,
    browser: BrowserConsent | None = None,
) -> Decision:
    """Every category must allow the purpose; the first refusal answers (categories in name order)."""
    declaration = load_declaration()
    found = _declared(declaration, purpose_id, categories)
    if isinstance(found, Decision):
        return found
    purpose, first = found
    basis = purpose.legal_basis.value
    if person.is_erased:
        return Decision(False, purpose_id, basis, ERASED, first)
    if person.is_restricted and not purpose.survives_restriction:
        return Decision(False, purpose_id, basis, RESTRICTED, first)
    if purpose.legal_basis is not LegalBasis.CONSENT:
        return Decision(True, purpose_id, basis, f"legal basis: {basis}", first)
    if given is not None and (given.kind is ConsentKind.SEPARATE or not separate):
        # Recorded once allowed (see processing), under the purpose as declared now.
        return Decision(True, purpose_id, basis, gettext_noop("active consent"), first)
    if browser is not None and not separate:
        return Decision(True, purpose_id, basis, gettext_noop("cookie consent in force"), first)
    return _consented(declaration, person, purpose, first, separate=separate)


def _decide_unattributed(purpose_id: str, categories: Collection[str]) -> Decision:
    """About nobody stored: declared and bound, as for a person; a purpose resting on consent is refused."""
    found = _declared(load_declaration(), purpose_id, categories)
    if isinstance(found, Decision):
        return found
    purpose, first = found
    basis = purpose.legal_basis.value
    if purpose.legal_basis is LegalBasis.CONSENT:
        return Decision(False, purpose_id, basis, NOBODY_TO_CONSENT, first)
    return Decision(True, purpose_id, basis, f"legal basis: {basis}", first)


NOBODY_TO_CONSENT = gettext_noop("the purpose rests on consent, and no stored person could have given it")


def _declared(declaration: Declaration, purpose_id: str, categories: Collection[str]) -> tuple[Purpose, str] | Decision:
    """The purpose as declared and the first category (in name order), or the refusal: the purpose
    undeclared, or the first category undeclared or not listing it (:func:`_unbound`)."""
    if not categories:
        raise ValueError("a use of personal data names at least one category")
    ordered = sorted(categories)
    try:
        purpose = declaration.purpose(purpose_id)
    except KeyError:
        undeclared = gettext_noop("the purpose is not declared in the privacy policy")
        return Decision(False, purpose_id, "", undeclared, ordered[0])
    unbound = _unbound(declaration, purpose, ordered)
    return unbound if unbound is not None else (purpose, ordered[0])


def _unbound(declaration: Declaration, purpose: Purpose, categories: list[str]) -> Decision | None:
    """Purpose binding: the refusal for the first category that is undeclared or does not list the purpose."""
    basis = purpose.legal_basis.value
    for category in categories:
        try:
            declared = declaration.category(category)
        except KeyError:
            refused = gettext_noop("this category of data is not declared in the privacy policy")
            return Decision(False, purpose.id, basis, refused, category)
        if purpose.id not in declared.purposes:
            refused = gettext_noop("the privacy policy does not declare this purpose for this category of data")
            return Decision(False, purpose.id, basis, refused, category)
    return None


def _consented(
    declaration: Declaration, person: Person, purpose: Purpose, category: str, *, separate: bool
) -> Decision:
    """A consent-based purpose: an active (separate, if asked) consent to the purpose as declared now.

    The fingerprint covers the purpose and every category it is declared for, with their retention
    (``Declaration.purpose_fingerprints``): consent given before any of them changed is stale.
    """
    basis = purpose.legal_basis.value
    consents = ConsentRecord.objects.filter(person=person).for_purpose(purpose.id).active()
    if separate:
        consents = consents.filter(kind=ConsentKind.SEPARATE)
    fingerprints = set(consents.values_list("purpose_hash", flat=True))  # one query answers both questions
    if not fingerprints:
        reason = (
            gettext_noop("no active separate consent for this purpose")
            if separate
            else gettext_noop("no active consent for this purpose")
        )
        return Decision(False, purpose.id, basis, reason, category)
    if declaration.purpose_fingerprint(purpose.id) not in fingerprints:
        changed = gettext_noop("the purpose changed since consent was given; consent must be asked again")
        return Decision(False, purpose.id, basis, changed, category)
    return Decision(True, purpose.id, basis, gettext_noop("active consent"), category)


def _prepare_given(person: Person, purpose_id: str, given: GivenConsent | None) -> PreparedConsent | None:
    if given is None:
        return None
    return prepare_consent(
        person,
        purpose_id,
        channel=given.channel,
        language=given.language,
        shown_text=given.shown_text,
        kind=given.kind,
    )


def _record_refusals(refused: list[tuple[Person, Decision]], use: Use) -> int:
    """Record each refusal (see :attr:`Use.refused_once` for the one exception); how many were."""
    repeated = _refused_already(refused, use) if use.refused_once else set()
    recorded = 0
    for person, decision in refused:
        if person.pk not in repeated:
            _record(decision, person, use)
            recorded += 1
    return recorded


def _refused_already(refused: list[tuple[Person, Decision]], use: Use) -> set[uuid.UUID]:
    """The people refused for their own choice whose same refusal (purpose, category, context) is
    in the log since they made that choice: one statement for all of them."""
    since = {
        person.pk: person.erased_at if decision.reason == ERASED else person.restricted_at
        for person, decision in refused
        if decision.reason in {ERASED, RESTRICTED}
    }
    if not since:
        return set()
    decision = refused[0][1]  # one use: one purpose, one first category
    logged = AuditEvent.objects.filter(
        person__in=since,
        event_type=use.refused_event,
        purpose=decision.purpose,
        extra__context=use.context,
        extra__category=decision.category,
    ).values_list("person_id", "occurred_at")
    return {person_id for person_id, at in logged if (made := since[person_id]) is not None and at >= made}


def _record(decision: Decision, person: Person | None, use: Use) -> None:
    """The audit row of a decision: every refusal, and every use of a non-consent basis (about
    ``person``, or about nobody stored yet)."""
    if decision.allowed and decision.basis == LegalBasis.CONSENT.value:
        return  # the consent record is the evidence (CON-01)
    extra = {"context": use.context, "category": decision.category, **use.extra}
    if decision.allowed:
        event, reason = EventType.PROCESSING_UNDER_BASIS, decision.reason
        extra["basis"] = decision.basis
    else:
        event, reason = use.refused_event, use.stated_reason or decision.reason
        extra["refusal"] = decision.reason
    record_event(
        event,
        actor=use.actor,
        actor_kind=use.actor_kind,
        person=person,
        purpose=decision.purpose,
        fields=use.fields,
        reason=reason,
        extra=extra,
    )
