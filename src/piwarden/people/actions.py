"""Write paths for people."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from piwarden.audit import log as audit_log
from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.audit.models import REASON_MAX_LENGTH
from piwarden.consent.models import ConsentRecord
from piwarden.people import ledger
from piwarden.people.models import Person
from piwarden.people.registry import (
    EXPORT_PURPOSE,
    NO_REASON_TO_KEEP,
    Correctable,
    Index,
    Subject,
    correctables,
    erase_categories,
    erase_people_categories,
)
from piwarden.policy.declaration import Declaration, LegalBasis, load_declaration
from piwarden.prepared import PreparedInsert, prepare_insert
from piwarden.processing import gate
from piwarden.vault import blind, outbox
from piwarden.vault.crypto import destroy_data_key, destroy_data_keys, new_data_key
from piwarden.vault.models import DataKey

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def find_or_create_person(*, email: str, phone: str | None = None) -> Person:
    """The person with this e-mail (by blind index), created with a data key if new.

    Joins the caller's transaction without a savepoint (or opens one).  Two concurrent first
    requests with one e-mail meet the unique index: the loser's ``IntegrityError`` ends its
    transaction, and its caller runs the act again, which then finds the winner's row.
    """
    found = person_or_new(email=email, phone=phone)
    if isinstance(found, Person):
        return found
    with transaction.atomic(savepoint=False):
        return found()


@dataclass(frozen=True)
class NewPerson:
    """A person not stored yet: their data key made and wrapped, their rows prepared.

    Everything but the writing happens before the transaction (:func:`person_or_new`); calling
    it inside the transaction (as the gate calls a finder) INSERTs the data key and the person and
    records their creation.  ``person.data_key_id`` is known at once, so a write path can seal the
    person's first data under it beforehand.  If another request created the same e-mail
    meanwhile, the person's unique index raises ``IntegrityError``: the caller prepares again.
    """

    person: Person
    rows: tuple[PreparedInsert, ...]

    def __call__(self) -> Person:
        for row in self.rows:
            row.run()
        record_event(EventType.PERSON_CREATED, actor_kind=ActorKind.VISITOR, person=self.person)
        return self.person


def person_or_new(*, email: str, phone: str | None = None) -> Person | NewPerson:
    """The person with this e-mail (by blind index), or a :class:`NewPerson` ready to be written.

    Run it before the transaction: it reads without taking SQLite's write lock, and the key
    generation, wrapping and blind indexes of a new person stay out of the lock's span.  A person
    found here is handed to the gate as an object, which reads their restriction and erasure again
    inside its transaction.
    """
    existing = Person.objects.filter(email_index=blind.email_index(email)).first()
    return existing if existing is not None else new_person(email=email, phone=phone)


def new_person(*, email: str, phone: str | None = None) -> NewPerson:
    """A :class:`NewPerson` with this e-mail, without looking first: the unique index on the
    e-mail's blind index refuses it (``IntegrityError``) if the person is known."""
    key = new_data_key()
    person = Person(  # type: ignore[misc]  # django-stubs misreads nullable CharField subclasses
        data_key=key,
        email_index=blind.email_index(email),
        phone_index=blind.phone_index(phone) if phone else None,
    )
    return NewPerson(person, (prepare_insert(key), prepare_insert(person)))


def shred_person(
    person: Person,
    *,
    reason: str,
    erased: Mapping[str, int] | None = None,
    replayed: ledger.Entry | None = None,
    by: User | None = None,
    reference: str = "",
) -> bool:
    """Destroy the person's data key: every ciphertext of theirs becomes unreadable.

    The blind indexes are cleared too, so the person can no longer be found.
    The sealed copies of e-mails sent to them are deleted: they are sealed under
    the key-encryption key, not the person's data key, so destroying the data
    key alone would leave them readable.  They are found by the outbox tag of
    the e-mail blind index, which is why this happens before the index is
    cleared, and inside the transaction: a rollback leaves the person intact
    with fewer copies of mail already sent, while deleting after the commit
    could, after a crash in between, leave copies nothing can find any more.
    Erasure workflows (rights requests, retention) build on this, inside their own
    transaction; :func:`erase_person` is the entry point for one erasure on request.
    ``erased`` (counts per category of what the erasers deleted or restricted) joins the event.
    The erasure is written to the erasure ledger (:mod:`piwarden.people.ledger`) last, inside the
    transaction: if the ledger cannot be written, nothing is erased (``LedgerUnavailable``).  A
    ``replayed`` ledger entry (``piwarden retention replay-erasures``) is in the ledger already.
    Returns False when the person was erased already (nothing is done or recorded again).
    """
    return bool(
        shred_people(
            [person],
            reason=reason,
            erased={person.pk: erased} if erased is not None else None,
            replayed={person.pk: replayed} if replayed is not None else None,
            by=by,
            reference=reference,
        )
    )


def shred_people(
    people: Sequence[Person],
    *,
    reason: str,
    erased: Mapping[Any, Mapping[str, int]] | None = None,
    replayed: Mapping[Any, ledger.Entry] | None = None,
    by: User | None = None,
    reference: str = "",
) -> list[Person]:
    """:func:`shred_person` for many people at once, with the same steps in set-based statements:
    the people locked (one SELECT … FOR UPDATE), the sealed mail to any of them deleted (one listing
    of the outbox), their data keys destroyed (one UPDATE), their look-up indexes cleared (one
    UPDATE), one ``person.shredded`` event each (one INSERT, ``audit.log.batched``) and their
    erasures appended to the ledger together (one lock, one write, one fsync), last.  ``erased``
    and ``replayed``: per person, as :func:`shred_person` takes them.  Returns the people shredded
    (those erased already are skipped), in the order of their keys.  The mail's deletion is left to
    the outbox's eraser where ``erased`` says it ran for the person (one listing of the outbox and one
    keyed digest a person, not two)."""
    if not people:
        return []
    with transaction.atomic():
        locked = list(
            Person.objects.select_for_update()
            .filter(pk__in=[p.pk for p in people], erased_at__isnull=True)
            .order_by("pk")
        )
        if not locked:
            return []
        # Where the outbox's eraser ran for the person in this transaction, its listing is not repeated.
        ran = erased or {}
        indexes = {p.pk: p.email_index for p in locked if p.email_index and outbox.CATEGORY not in ran.get(p.pk, {})}
        mail = outbox.delete_messages_to_any(settings.PIWARDEN_OUTBOX_DIR, indexes)
        now = timezone.now()
        destroy_data_keys([p.data_key_id for p in locked], now)
        Person.objects.filter(pk__in=[p.pk for p in locked]).update(email_index=None, phone_index=None, erased_at=now)
        with audit_log.batched():
            for person in locked:
                person.email_index = person.phone_index = None
                person.erased_at = now
                extra: dict[str, object] = {"outbox_messages_deleted": mail.get(person.pk, 0)}
                if erased is not None and person.pk in erased:
                    extra["erased"] = dict(erased[person.pk])
                if replayed is not None and person.pk in replayed:
                    extra["replayed_ledger_entry"] = replayed[person.pk].seq
                if reference:
                    extra["reference"] = reference
                record_event(EventType.PERSON_SHREDDED, actor=by, person=person, reason=reason, extra=extra)
        ledger.append_many([(p.pk, p.data_key_id, now) for p in locked if replayed is None or p.pk not in replayed])
    return locked


# An erasure's reason says when and how the person asked (never who they are): as much as the
# staff read path asks of a reveal's reason, and no more than the audit log keeps.
MIN_ERASURE_REASON = 10


def _checked_reason(text: str, minimum: int, asked: str) -> str:
    """``text`` trimmed; ValueError naming ``asked`` when it is shorter than ``minimum``, or too long to keep."""
    reason = text.strip()
    if len(reason) < minimum:
        raise ValueError(f"Give a reason of at least {minimum} characters ({asked}).")
    if len(reason) > REASON_MAX_LENGTH:
        raise ValueError(f"Give a reason of at most {REASON_MAX_LENGTH} characters.")
    return reason


def erasure_reason(text: str) -> str:
    """The reason as recorded (trimmed); ValueError when it is too short or too long to keep."""
    return _checked_reason(text, MIN_ERASURE_REASON, "when and how the person asked")


@transaction.atomic(durable=True)
def erase_person(person: Person, *, reason: str, by: User | None = None, reference: str = "") -> bool:
    """Erase one person at their request (policy §三(二), §六), as its own transaction.

    Runs the eraser of every visitor category (:mod:`piwarden.people.registry`: their rows
    deleted, what the law requires to keep restricted), then crypto-shreds them through
    :func:`shred_person` with the reason checked (:func:`erasure_reason`) and recorded in
    ``person.shredded`` with the counts per category (never values), the staff member who acts
    (``by``; None for the person's own verified request or the operator) and the request's
    ``reference``.  Returns False when they were erased already.  Cannot be undone: interfaces
    confirm before they call it.
    """
    reason = erasure_reason(reason)
    locked = Person.objects.select_for_update().get(pk=person.pk)
    if locked.is_erased:
        return False
    erased = erase_categories(locked, load_declaration(), Subject.VISITOR)
    return shred_person(locked, reason=reason, erased=erased, by=by, reference=reference)


# --- people nothing holds any more (rights-rest) ---------------------------------------------

# What links to a person without holding data of theirs for a purpose: the audit trail, which a
# Person row exists to anchor (and which an erasure keeps).
# The login log of an account (accounts.LoginRecord) is kept after an erasure, for security alone,
# under a key of its own: it gives no reason to keep the person findable either.
# So are security events (piwarden.security: kept six months under the month's key, whoever is
# erased), and the records that a notice was sent (a policy change, an incident, the cessation),
# which prove a duty was met and hold no value of the person's.
NOT_HOLDING = frozenset(
    {
        "audit.AuditEvent",
        "accounts.LoginRecord",
        "security.SecurityEvent",
        "revisions.ChangeNotice",
        "incidents.Notice",
        "cessation.CessationNotice",
    }
)


def holders(person: Person) -> list[str]:
    """The models (``app.Model``) that still have rows of ``person``, the audit log aside.

    Found from the Person's reverse relations (``_meta``), so a model added later that links to
    a person holds them by construction; an empty list means nothing but the audit trail does.
    """
    found = []
    for relation in Person._meta.related_objects:
        label = relation.related_model._meta.label
        if label in NOT_HOLDING or not (relation.one_to_many or relation.one_to_one):
            continue
        if relation.related_model._default_manager.filter(**{relation.field.name: person}).exists():
            found.append(label)
    return found


def erase_unheld(person_ids: Iterable[uuid.UUID], *, reason: str) -> list[uuid.UUID]:
    """Erase, in the caller's transaction, each of these people whom nothing holds any more.

    For a job that has just deleted the last rows that gave us a person (the retention sweep's
    unverified rights requests: a person created by a request they never confirmed): left alone,
    their row would keep their e-mail's blind index, a look-up of who once asked, and their data
    key.  Each is erased as :func:`erase_person` erases (every category's eraser, then
    :func:`shred_person`: key destroyed, indexes cleared, sealed mail deleted, ``person.shredded``
    with ``reason``, the erasure ledger), by the system.  A person anything else still holds (a
    consultation, a consent, another request: :func:`holders`) is kept.  Returns who was erased.
    Raises what ``shred_person`` raises (``LedgerUnavailable``): the caller's transaction then
    rolls back, and the job runs again next time.
    """
    reason = erasure_reason(reason)
    people = Person.objects.select_for_update().filter(pk__in=list(person_ids), erased_at__isnull=True)
    chosen = [person for person in people if not holders(person)]
    counts = erase_people_categories(chosen, load_declaration())
    return [person.pk for person in shred_people(chosen, reason=reason, erased=counts)]


# --- replaying erasures after a restore (invariant 6) -----------------------------------------


@transaction.atomic(durable=True)
def replay_erasure(entry: ledger.Entry) -> bool:
    """Erase again the person of a ledger entry whom a restored database shows as not erased.

    The same erasure as :func:`erase_person` (every category's eraser, then the crypto-shredding),
    recorded with the entry's number; the entry is in the ledger already, so none is written.
    Also destroys the data key the entry names if the restored database holds it apart from the
    person's.  Returns False when there is nothing to do (erased already, or not in this database).
    """
    locked = Person.objects.select_for_update().filter(pk=entry.person).first()
    if locked is None or locked.is_erased:
        return False
    erased = erase_categories(locked, load_declaration(), Subject.VISITOR)
    reason = f"Replayed from the erasure ledger (entry {entry.seq}, erased {entry.erased_at:%Y-%m-%d %H:%M} UTC)"
    shred_person(locked, reason=reason, erased=erased, replayed=entry)
    for key in DataKey.objects.select_for_update().filter(pk=entry.data_key, destroyed_at__isnull=True):
        destroy_data_key(key)
    return True


@transaction.atomic(durable=True)
def record_replay(*, replayed: int, recorded: int, entries: int) -> None:
    """The summary of one ``piwarden retention replay-erasures`` run, in the audit log."""
    record_event(
        EventType.ERASURES_REPLAYED,
        extra={"ledger_entries": entries, "replayed": replayed, "recorded_in_ledger": recorded},
    )


def record_unrecorded_erasures(persons: list[uuid.UUID]) -> int:
    """Write to the ledger the database's erasures it lacks (erased before it existed, or it was replaced)."""
    written = 0
    for person in Person.objects.filter(pk__in=persons).select_related("data_key").order_by("erased_at", "pk"):
        when = person.data_key.destroyed_at or timezone.now()
        ledger.append(person.pk, person.data_key_id, when)
        written += 1
    return written


# --- restriction (PIPL 44) ------------------------------------------------------------------

MIN_LIFT_REASON = 10


def _actor(by: User | None) -> dict[str, Any]:
    return {"actor": by, "actor_kind": ActorKind.STAFF if by is not None else ActorKind.VISITOR}


@transaction.atomic(durable=True)
def restrict_processing(person: Person, *, by: User | None, reference: str) -> bool:
    """Restrict the processing of the person's data (PIPL 44): the gate then allows only the purposes
    that survive a restriction (storage, security, proving consent, answering their requests).

    ``by``: the staff member who acts, or None for the person's own verified request; ``reference``:
    the request's reference, for the audit.  Returns False when they were restricted already (or
    erased: nothing is left to restrict).
    """
    locked = Person.objects.select_for_update().get(pk=person.pk)
    if locked.restricted_at is not None or locked.is_erased:
        return False
    locked.restricted_at = timezone.now()
    locked.save(update_fields=["restricted_at"])
    record_event(EventType.PERSON_RESTRICTED, person=locked, extra={"reference": reference}, **_actor(by))
    person.restricted_at = locked.restricted_at
    return True


def lift_reason(text: str) -> str:
    """The reason for lifting a restriction, as recorded (trimmed); ValueError when too short or long."""
    return _checked_reason(text, MIN_LIFT_REASON, "why the restriction ends")


@transaction.atomic(durable=True)
def lift_restriction(person: Person, *, by: User | None, reason: str) -> bool:
    """Lift the restriction (the person's request, or staff with a reason), audited with the reason.

    Returns False when the person was not restricted.
    """
    reason = lift_reason(reason)
    locked = Person.objects.select_for_update().get(pk=person.pk)
    if locked.restricted_at is None:
        return False
    since = locked.restricted_at
    locked.restricted_at = None
    locked.save(update_fields=["restricted_at"])
    record_event(
        EventType.RESTRICTION_LIFTED,
        person=locked,
        reason=reason,
        extra={"restricted_since": since.isoformat()},
        **_actor(by),
    )
    person.restricted_at = None
    return True


# --- correction (PIPL 46) -------------------------------------------------------------------


class CorrectionRefused(ValueError):
    """The correction cannot be made: ``errors`` maps each field to its messages (in the person's language)."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Correction:
    changed: dict[str, int]  # field → rows whose value changed
    unchanged: dict[str, int]  # field → rows that held the new value already
    indexes: list[str]  # the Person's blind indexes recomputed


def _checked_changes(changes: Mapping[str, str]) -> dict[str, tuple[Correctable, str]]:
    declared = {f for c in load_declaration().categories for f in c.fields}
    known = correctables()
    errors: dict[str, list[str]] = {}
    checked: dict[str, tuple[Correctable, str]] = {}
    for field, value in changes.items():
        if field not in declared:
            errors[field] = [str(_("This is not personal information the privacy policy declares."))]
        elif field not in known:
            errors[field] = [str(_("This information cannot be corrected (it is not something you gave us)."))]
        else:
            try:
                checked[field] = (known[field], known[field].clean(value))
            except ValidationError as exc:
                errors[field] = [str(m) for m in exc.messages]
    if not changes:
        errors["changes"] = [str(_("Say which information to correct."))]
    if errors:
        raise CorrectionRefused(errors)
    return checked


def correct_person_data(
    person: Person, changes: Mapping[str, str], *, by: User | None, reference: str, language: str | None = None
) -> Correction:
    """Correct the person's data (PIPL 46): each declared field in ``changes`` gets the new value
    in every row of theirs that holds it, and the Person's blind index where the field has one.

    Every new value is checked first with the validation of the form that collected it; any
    error refuses the whole correction (:class:`CorrectionRefused`, messages in ``language`` or
    the active one) and nothing changes.  Writing the person's data is a use for the purpose
    ``answer_rights_request``, so it runs under the gate's permit (refused for an erased person);
    the audit event names the fields and counts rows, never a value.
    """
    with translation.override(language or translation.get_language()):
        checked = _checked_changes(changes)
    fields = sorted(checked)
    categories = {correctable.category for correctable, _value in checked.values()}
    use = gate.Use("rights.correct", fields=fields, extra={"reference": reference}, **_actor(by))
    try:
        with gate.processing(person, EXPORT_PURPOSE, categories=categories, use=use) as permit:
            return _correct(permit.person, checked, by=by, reference=reference)
    except IntegrityError:
        person.refresh_from_db(fields=["email_index", "phone_index"])
        # The new e-mail address is another person's look-up key.  Saying so would tell who is
        # known here: the answer is the same as for any address that cannot be used.
        with translation.override(language or translation.get_language()):
            message = _("This e-mail address cannot be recorded for you here. Please contact us by phone or e-mail.")
            raise CorrectionRefused({f: [str(message)] for f in fields}) from None


def _correct(
    person: Person, checked: Mapping[str, tuple[Correctable, str]], *, by: User | None, reference: str
) -> Correction:
    changed: dict[str, int] = {}
    unchanged: dict[str, int] = {}
    indexes: list[str] = []
    for field, (correctable, value) in sorted(checked.items()):
        changed[field], unchanged[field] = correctable.apply(person, value)
        if correctable.index is Index.EMAIL:
            person.email_index = blind.email_index(value)
            indexes.append("email_index")
        elif correctable.index is Index.PHONE:
            person.phone_index = blind.phone_index(value)
            indexes.append("phone_index")
    if indexes:
        person.save(update_fields=indexes)
    record_event(
        EventType.PERSON_CORRECTED,
        person=person,
        purpose=EXPORT_PURPOSE,
        fields=sorted(checked),
        extra={"reference": reference, "rows_changed": changed, "rows_unchanged": unchanged, "indexes": indexes},
        **_actor(by),
    )
    return Correction(changed=changed, unchanged=unchanged, indexes=indexes)


# --- withdrawal of consent (PIPL 15, 47(1)(3)) -------------------------------------------------


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal did: consent records marked withdrawn (kept), and rows deleted per category."""

    records: int
    deleted: dict[str, int]
    kept: list[str]  # categories the purpose uses that rest on another basis too: kept


def held_only_on(declaration: Declaration, purpose_id: str) -> tuple[list[str], list[str]]:
    """(categories held only on the consent to ``purpose_id``, the other categories the purpose uses).

    A category is held only on that consent when every purpose it is declared for is that one,
    leaving aside :data:`~piwarden.people.registry.NO_REASON_TO_KEEP`: answering a person's request
    about their data is no reason to keep it, and nor is a purpose the declaration marks
    ``incidental`` (telling them of a policy change).  A category that also serves a purpose on another
    basis (proving consent, security: a legal duty) stays, as the privacy page says (§六).
    """
    only: list[str] = []
    kept: list[str] = []
    for category in declaration.categories:
        if purpose_id not in category.purposes:
            continue
        others = set(category.purposes) - {purpose_id, *NO_REASON_TO_KEEP}
        others -= {p for p in others if declaration.purpose(p).incidental}
        (kept if others else only).append(category.id)
    return only, kept


@transaction.atomic(durable=True)
def withdraw(person: Person, purpose_id: str, *, channel: str, reference: str) -> Withdrawal:
    """The person withdraws their consent to ``purpose_id`` (PIPL 15, 47(1)(3); policy §六).

    The consent records are kept, marked withdrawn, so that what was done before stays provably
    lawful; the gate refuses every use for the purpose from now on (it needs an active consent);
    and the data held only on that consent (:func:`held_only_on`) is deleted by its categories'
    erasers (the person's consultation requests, the background jobs about them, the copies of the
    e-mails sent to them), in this same transaction.  ``reference``: the request's, for the audit.
    Returns the counts; a second withdrawal finds nothing to do and records nothing.
    """
    declaration = load_declaration()
    try:
        purpose = declaration.purpose(purpose_id)
    except KeyError:
        raise ValueError(f"{purpose_id!r} is not a purpose of the privacy policy") from None
    if purpose.legal_basis is not LegalBasis.CONSENT:
        raise ValueError(f"{purpose_id!r} does not rest on consent: there is no consent to withdraw")
    locked = Person.objects.select_for_update().get(pk=person.pk)
    only, kept = held_only_on(declaration, purpose_id)
    records = ConsentRecord.objects.filter(person=locked).for_purpose(purpose_id).active()
    count = records.update(withdrawn_at=timezone.now())
    deleted = erase_categories(locked, declaration, Subject.VISITOR, only=only)
    if count or any(deleted.values()):
        record_event(
            EventType.CONSENT_WITHDRAWN,
            actor_kind=ActorKind.VISITOR,
            person=locked,
            purpose=purpose_id,
            extra={"channel": channel, "records": count, "reference": reference, "deleted": deleted, "kept": kept},
        )
    return Withdrawal(records=count, deleted=deleted, kept=kept)
