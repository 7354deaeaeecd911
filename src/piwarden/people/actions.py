"""Write paths for people."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.audit.models import REASON_MAX_LENGTH
from piwarden.people.models import Person
from piwarden.people.registry import Subject, erase_categories
from piwarden.policy.declaration import load_declaration
from piwarden.prepared import PreparedInsert, prepare_insert
from piwarden.vault import blind, outbox
from piwarden.vault.crypto import destroy_data_key, new_data_key


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


def shred_person(person: Person, *, reason: str, erased: Mapping[str, int] | None = None) -> bool:
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
    Returns False when the person was erased already (nothing is done or recorded again).
    """
    with transaction.atomic():
        locked = Person.objects.select_for_update().select_related("data_key").get(pk=person.pk)
        if locked.is_erased:
            return False
        mail_deleted = 0
        if locked.email_index:
            mail_deleted = outbox.delete_messages_to(settings.PIWARDEN_OUTBOX_DIR, locked.email_index)
        destroy_data_key(locked.data_key)
        locked.email_index = None
        locked.phone_index = None
        locked.erased_at = timezone.now()
        locked.save(update_fields=["email_index", "phone_index", "erased_at"])
        extra: dict[str, object] = {"outbox_messages_deleted": mail_deleted}
        if erased is not None:
            extra["erased"] = dict(erased)
        record_event(EventType.PERSON_SHREDDED, person=locked, reason=reason, extra=extra)
    return True


# An erasure's reason says when and how the person asked (never who they are): as much as the
# staff read path asks of a reveal's reason, and no more than the audit log keeps.
MIN_ERASURE_REASON = 10


def erasure_reason(text: str) -> str:
    """The reason as recorded (trimmed); ValueError when it is too short or too long to keep."""
    reason = text.strip()
    if len(reason) < MIN_ERASURE_REASON:
        raise ValueError(f"Give a reason of at least {MIN_ERASURE_REASON} characters (when and how the person asked).")
    if len(reason) > REASON_MAX_LENGTH:
        raise ValueError(f"Give a reason of at most {REASON_MAX_LENGTH} characters.")
    return reason


@transaction.atomic(durable=True)
def erase_person(person: Person, *, reason: str) -> bool:
    """Erase one person at their request (policy §三(二), §六), as its own transaction.

    Runs the eraser of every visitor category (:mod:`piwarden.people.registry`: their rows
    deleted, what the law requires to keep restricted), then crypto-shreds them through
    :func:`shred_person` with the reason checked (:func:`erasure_reason`) and recorded in
    ``person.shredded`` with the counts per category (never values).  Returns False when they
    were erased already.  Cannot be undone: interfaces confirm before they call it.
    """
    reason = erasure_reason(reason)
    locked = Person.objects.select_for_update().get(pk=person.pk)
    if locked.is_erased:
        return False
    erased = erase_categories(locked, load_declaration(), Subject.VISITOR)
    return shred_person(locked, reason=reason, erased=erased)
