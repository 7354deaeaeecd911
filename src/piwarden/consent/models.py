"""The consent ledger.

A ConsentRecord proves what a person agreed to: the purpose, whether it was an
ordinary or a *separate* consent (单独同意, PIPL Art 23/25/29/39), the exact
text shown to them and the language, the policy version and digest in force,
a fingerprint of the purpose's definition (so a changed purpose makes the
consent stale, CON-03), when and through which channel.  Records are never
edited except to mark withdrawal.
"""

from __future__ import annotations

from django.db import models
from uuid6 import uuid7


class ConsentKind(models.TextChoices):
    ORDINARY = "ordinary", "Ordinary consent"
    SEPARATE = "separate", "Separate consent"


class ConsentRecordQuerySet(models.QuerySet["ConsentRecord"]):
    def active(self) -> ConsentRecordQuerySet:
        return self.filter(withdrawn_at__isnull=True)

    def for_purpose(self, purpose_id: str) -> ConsentRecordQuerySet:
        return self.filter(purpose=purpose_id)


class ConsentRecord(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="consents")
    purpose = models.CharField(max_length=40)
    kind = models.CharField(max_length=10, choices=ConsentKind.choices, default=ConsentKind.ORDINARY)
    policy_version = models.CharField(max_length=20)
    policy_hash = models.CharField(max_length=64)
    purpose_hash = models.CharField(max_length=64)
    channel = models.CharField(max_length=40)
    language = models.CharField(max_length=10)
    shown_text = models.TextField()
    given_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["person", "purpose"], name="consent_person_purpose_idx")]

    def __str__(self) -> str:
        return f"{self.kind} consent to {self.purpose} ({self.policy_version})"
