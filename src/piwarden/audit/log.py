"""Append to the audit log: ``record_event`` is the only way in."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.utils import timezone

from piwarden.audit.models import ActorKind, AuditChainHead, AuditEvent, EventType

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from piwarden.people.models import Person

__all__ = ["ActorKind", "EventType", "event_hash", "record_event"]

# Values under these keys must never reach the log, whatever a caller passes.  A key is read
# as words ("otp_token", "newPassword", "password1"), because callers log form fields and
# request bodies under their own names (the staff sign-in form's code field is "otp_token").
# A key *named* "…key" is key material; "primary_key_id" names a key and stays readable.
_SECRET_WORDS = {"password", "passwd", "secret", "token", "otp"}
_KEY_WORDS = {"key", "apikey"}
_MASK = "***"


def _is_secret(key: str) -> bool:
    words = [w for w in re.split(r"[^a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()) if w]
    return bool(words) and (words[-1] in _KEY_WORDS or any(w in _SECRET_WORDS for w in words))


def _masked(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking key's value masked, at any depth."""
    if isinstance(value, dict):
        return {k: (_MASK if _is_secret(str(k)) else _masked(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def event_hash(prev_hash: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(prev_hash.encode("ascii") + canonical.encode("utf-8")).hexdigest()


def record_event(
    event_type: EventType,
    *,
    actor: AbstractBaseUser | None = None,
    actor_kind: ActorKind | None = None,
    person: Person | None = None,
    purpose: str = "",
    fields: Iterable[str] = (),
    reason: str = "",
    extra: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event.  Must run inside the transaction of the change it records."""
    if not connection.in_atomic_block:
        raise RuntimeError("record_event() must run inside the transaction of the change it records")
    if actor_kind is None:
        actor_kind = ActorKind.STAFF if actor is not None else ActorKind.SYSTEM
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
    event = AuditEvent(
        seq=head.seq + 1,
        occurred_at=timezone.now(),
        event_type=str(event_type),
        actor_kind=str(actor_kind),
        actor_id=actor.pk if actor is not None else None,
        person_id=person.pk if person is not None else None,
        purpose=purpose,
        fields=sorted(fields),
        reason=reason,
        extra=_masked(extra or {}),
        prev_hash=head.hash,
    )
    event.hash = event_hash(head.hash, event.chain_body())
    event.save(force_insert=True)
    head.seq = event.seq
    head.hash = event.hash
    head.save(update_fields=["seq", "hash"])
    return event


def verify_chain() -> AuditEvent | None:
    """Return the first event whose hash does not follow from its predecessor, or None."""
    prev = "0" * 64
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        if event.prev_hash != prev or event_hash(prev, event.chain_body()) != event.hash:
            return event
        prev = event.hash
    return None
