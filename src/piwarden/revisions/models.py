"""The direct notices of a material policy change (CHG-01).

A :class:`ChangeNotice` is one person's direct notice of one material version: made once per
person (unique), marked when the e-mail went out, so that a re-run or a crash sends nobody a
second one.
"""

from __future__ import annotations

from django.db import models
from uuid6 import uuid7


class NoticeOutcome(models.TextChoices):
    PENDING = "pending", "Not sent yet"
    SENT = "sent", "Sent"
    REFUSED = "refused", "Refused by the processing gate (restricted or erased)"
    NO_CONTACT = "no_contact", "No contact data held any longer"


class ChangeNotice(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    version = models.ForeignKey("policy.PolicyVersion", on_delete=models.PROTECT, related_name="notices")
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="policy_notices")
    outcome = models.CharField(max_length=10, choices=NoticeOutcome.choices, default=NoticeOutcome.PENDING)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "person"], name="revisions_notice_once_per_person")]
        indexes = [models.Index(fields=["version", "outcome"], name="revisions_notice_pending_idx")]

    def __str__(self) -> str:
        return f"notice of policy version {self.version_id} ({self.outcome})"
