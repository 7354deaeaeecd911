"""Published versions of the privacy policy, and the direct notices of a material change (policy §十).

A :class:`PolicyVersion` keeps everything a version said: the declaration file and every privacy
text, byte for byte, with the digest computed over them exactly as
:func:`piwarden.policy.declaration.parse_declaration` computes the digest of the declaration in
force, so that a consent record (``consent.ConsentRecord.policy``, by that digest) points at the
very text the person was shown.  Stored in the database rather than as files beside the
declaration: the versions are evidence (CHG-02, the consent records' link), so they belong with
the records that point at them, are backed up and restored with them, and need no writable source
tree; a version is written once, by :func:`piwarden.revisions.actions.publish_version`, and never
changed or deleted.

The direct notices of a material version, one per person, are ``piwarden.revisions``'s.
"""

from __future__ import annotations

from django.db import models


class MaterialKind(models.TextChoices):
    """The six kinds of material change of policy §十, in its order."""

    PURPOSES = "purposes", "Purposes, categories or use of personal information"
    CONTROLLER = "controller", "Controller or ownership (merger, acquisition, restructuring)"
    RECIPIENTS = "recipients", "Main recipients of sharing, transfer or public disclosure"
    RIGHTS = "rights", "Your rights and how to exercise them"
    CONTACT = "contact", "Responsible department, contact or complaint channel"
    IMPACT_ASSESSMENT = "impact_assessment", "High risk found by a personal-information impact assessment"


class PolicyVersion(models.Model):
    number = models.PositiveIntegerField(unique=True)
    label = models.CharField(max_length=20)  # the declaration's [policy] version ("1.0")
    effective = models.DateField()
    digest = models.CharField(max_length=64, unique=True)
    declaration = models.TextField()  # declaration.toml as published
    texts = models.JSONField()  # {"privacy/zh-hans.html": "...", ...}: every file under texts/
    published_at = models.DateTimeField()
    kinds = models.JSONField(default=list)  # MaterialKind values, derived and declared
    declared_kinds = models.JSONField(default=list)  # the kinds the operator declared (--kind)
    notice_zh = models.TextField(blank=True)
    notice_en = models.TextField(blank=True)
    # The version reduces rights (removes one, lengthens a deadline), published only on the
    # operator's confirmation that explicit consent will be sought (never otherwise).
    reduces_rights = models.BooleanField(default=False)
    notices_queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"policy version {self.number} ({self.label}, effective {self.effective})"

    @property
    def material(self) -> bool:
        return bool(self.kinds)

    def notice(self, language: str | None) -> str:
        return self.notice_en if (language or "").startswith("en") else self.notice_zh
