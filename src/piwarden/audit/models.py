"""The append-only audit log.

Every state change and every staff read of personal data writes one
:class:`AuditEvent` in the same transaction as the change (DESIGN invariant 3).
Events name fields and purposes, never values.

Tamper evidence: each event carries ``seq``, ``prev_hash`` and ``hash`` =
SHA-256(prev_hash || canonical JSON of the event).  Appends are serialised by
locking the single :class:`AuditChainHead` row, so the chain has no forks.
Rewriting or deleting an event breaks every later hash; the audit capability
adds checkpoints kept elsewhere and a verifier that names the first broken
event.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

REASON_MAX_LENGTH = 500


class EventType(models.TextChoices):
    CONSENT_GIVEN = "consent.given", _("Consent given")
    CONSENT_WITHDRAWN = "consent.withdrawn", _("Consent withdrawn")
    PROCESSING_UNDER_BASIS = "processing.basis", _("Processing under a non-consent legal basis")
    PROCESSING_REFUSED = "processing.refused", _("Processing refused by the gate")
    PERSON_CREATED = "person.created", _("Person created")
    PERSON_SHREDDED = "person.shredded", _("Person's data key destroyed")
    INQUIRY_SUBMITTED = "inquiry.submitted", _("Consultation request submitted")
    INQUIRY_ACKNOWLEDGED = "inquiry.acknowledged", _("Consultation request acknowledged by e-mail")
    MAIL_FAILED = "mail.failed", _("E-mail could not be sent after every retry")
    PII_REVEALED = "pii.revealed", _("Personal data revealed to staff")
    PII_REVEAL_REFUSED = "pii.reveal_refused", _("Reveal of personal data refused")
    PII_REVEAL_FAILED = "pii.reveal_failed", _("Reveal of personal data failed: keys unavailable")
    STAFF_ACCESS_REFUSED = "staff.access_refused", _("Staff access refused")
    STAFF_CREATED = "staff.created", _("Staff account created")
    STAFF_SIGNED_IN = "staff.signed_in", _("Staff signed in")
    STAFF_SIGN_IN_FAILED = "staff.sign_in_failed", _("Staff sign-in failed")
    STAFF_SIGNED_OUT = "staff.signed_out", _("Staff signed out")
    STAFF_LANGUAGE_SET = "staff.language_set", _("Staff console language chosen")
    AUDIT_VIEWED = "audit.viewed", _("Audit log viewed")
    KEYS_ROTATED = "keys.rotated", _("Key-encryption key rotated")
    OUTBOX_PRUNED = "outbox.pruned", _("Expired e-mail copies deleted from the outbox")
    OUTBOX_READ = "outbox.read", _("Sealed e-mail copies opened by the operator")
    KEYS_REPLACED = "keys.replaced", _("New keys put in place over existing data (that data is unreadable)")
    RETENTION_SWEPT = "retention.swept", _("Data past its declared retention deleted by the housekeeping")
    SCHEDULE_LOADED = "rights.schedule_loaded", _("A year's working-day schedule loaded from the State Council notice")


class ActorKind(models.TextChoices):
    STAFF = "staff", _("Staff")
    VISITOR = "visitor", _("Visitor (the person themself)")
    SYSTEM = "system", _("System")


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    person = models.ForeignKey(
        "people.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    purpose = models.CharField(max_length=40, blank=True)
    fields = models.JSONField(default=list, blank=True)
    # Staff type reveal reasons here (free text, declared as its own category): bounded.
    reason = models.CharField(max_length=REASON_MAX_LENGTH, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["person", "seq"], name="audit_person_seq_idx")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type}"

    def chain_body(self) -> dict[str, Any]:
        """What the hash covers: every column but the hashes themselves (one definition for
        appending and for verifying, so the two cannot drift apart)."""
        return {
            "seq": self.seq,
            "occurred_at": self.occurred_at.isoformat(),
            "event_type": self.event_type,
            "actor_kind": self.actor_kind,
            "actor": self.actor_id,
            "person": str(self.person_id) if self.person_id is not None else None,
            "purpose": self.purpose,
            "fields": self.fields,
            "reason": self.reason,
            "extra": self.extra,
        }


class AuditChainHead(models.Model):
    """The single row that orders appends (locked with SELECT … FOR UPDATE)."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"head #{self.seq}"
