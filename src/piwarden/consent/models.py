"""The consent ledger.

A ConsentRecord proves what a person agreed to: the purpose, whether it was an
ordinary or a *separate* consent (单独同意, PIPL Art 23/25/29/39), the exact
text shown to them and the language, the policy version and digest in force,
a fingerprint of the purpose's definition and its categories (so a changed purpose makes the
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
    # Indexed by consent_person_purpose_idx (person, purpose), which it leads.
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="consents", db_index=False)
    purpose = models.CharField(max_length=40)
    kind = models.CharField(max_length=10, choices=ConsentKind.choices, default=ConsentKind.ORDINARY)
    policy_version = models.CharField(max_length=20)
    # The published version (piwarden.policy.models.PolicyVersion) the consent was given under, by
    # the declaration's digest, in the column that always held it: records given before versions
    # were kept hold a digest no stored version has, and stay as they are (evidence is never
    # rewritten), so the database enforces no constraint; ``policy_id`` is the digest.
    policy = models.ForeignKey(
        "policy.PolicyVersion",
        to_field="digest",
        db_column="policy_hash",
        db_constraint=False,
        db_index=False,
        on_delete=models.DO_NOTHING,  # versions are never deleted
        related_name="consents",
    )
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


class CookieAction(models.TextChoices):
    ACCEPT_ALL = "accept_all", "Accepted every category"
    REJECT_ALL = "reject_all", "Refused every non-essential category"
    CHOOSE = "choose", "Chose categories one by one"
    CLEARED = "cleared", "Deleted the site's cookies (no category allowed until asked again)"


class CookieConsent(models.Model):
    """One visitor's cookie choice: the proof of consent for non-essential cookies.

    A visitor who chooses has no Person (no account, nothing given to us), and none is made:
    the row is keyed by ``consent_id``, a random number made for the choice and kept only in
    the visitor's ``piwarden_consent`` cookie, so that the cookie's holder, and nobody else, can
    point at their record.  Nothing here identifies anyone: no IP address, no user agent, no link
    to a Person or an inquiry.  Rows are appended, never edited; the latest of an id is its choice.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    consent_id = models.CharField(max_length=32, db_index=True)
    action = models.CharField(max_length=12, choices=CookieAction.choices)
    functional = models.BooleanField()
    analytics = models.BooleanField()
    # The browser sent Sec-GPC: 1, which counts as refusing analytics (recorded, whatever was clicked).
    gpc = models.BooleanField()
    cookies_version = models.CharField(max_length=16)
    policy_version = models.CharField(max_length=20)
    channel = models.CharField(max_length=20)
    language = models.CharField(max_length=10)
    given_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"cookie choice {self.action} ({self.cookies_version})"
