"""Write paths for people."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.people.models import Person
from piwarden.vault import blind
from piwarden.vault.crypto import create_data_key, destroy_data_key


def find_or_create_person(*, email: str, phone: str | None = None) -> Person:
    """The person with this e-mail (by blind index), created with a data key if new.

    Runs inside the caller's transaction.  Two concurrent first requests with
    one e-mail meet the unique index; the loser re-reads the winner's row.
    """
    email_index = blind.email_index(email)
    existing = Person.objects.filter(email_index=email_index).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            person = Person.objects.create(  # type: ignore[misc]  # django-stubs misreads nullable CharField subclasses
                data_key=create_data_key(),
                email_index=email_index,
                phone_index=blind.phone_index(phone) if phone else None,
            )
            record_event(EventType.PERSON_CREATED, actor_kind=ActorKind.VISITOR, person=person)
    except IntegrityError:
        return Person.objects.get(email_index=email_index)
    return person


def shred_person(person: Person, *, reason: str) -> None:
    """Destroy the person's data key: every ciphertext of theirs becomes unreadable.

    The blind indexes are cleared too, so the person can no longer be found.
    Erasure workflows (rights requests, retention) build on this.
    """
    with transaction.atomic():
        locked = Person.objects.select_for_update().select_related("data_key").get(pk=person.pk)
        if locked.is_erased:
            return
        destroy_data_key(locked.data_key)
        locked.email_index = None
        locked.phone_index = None
        locked.erased_at = timezone.now()
        locked.save(update_fields=["email_index", "phone_index", "erased_at"])
        record_event(EventType.PERSON_SHREDDED, person=locked, reason=reason)
