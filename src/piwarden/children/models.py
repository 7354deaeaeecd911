"""Children's protection (policy §八; law CHD-01 to CHD-04).

Keyed on the child's :class:`~piwarden.people.models.Person`, not on an account, so that the same
rules cover a consultation request (which has no account) and, once the accounts app is wired to
them, an account opened by someone under the declared age:

* :class:`ChildMark`: this person's data is a child's.  Made when a guardian's consent is asked
  for (``reason = declared``) or when staff flag the data as a child's sent without a guardian's
  consent (``reason = flagged``, then erased promptly).  A marked person's consultation requests
  are hidden from every staff role not granted children's data (``staff.permissions``), and each
  opening by a role that is is audited.
* :class:`GuardianRequest`: one e-mailed request for a guardian's consent: the guardian's e-mail
  (encrypted under the child's data key), the purposes they are asked to consent to, and the
  guardian's answer.  Its link carries the request's id signed with the site's key
  (``children.access.link_token``): nothing secret is stored, the link works once (the request
  is then answered) and until ``expires_at``.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from piwarden.vault.fields import EncryptedTextField
from piwarden.vault.models import PersonalData

# How long the guardian's link stays valid.
LINK_LIFETIME = datetime.timedelta(days=7)


class MarkReason(models.TextChoices):
    DECLARED = "declared", _("Under the age threshold: a guardian's consent was asked for")
    FLAGGED = "flagged", _("Flagged by staff as a child's, without a guardian's consent")


class ChildMark(models.Model):
    """This person's data is a child's (policy §八): hidden from roles not granted it."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    person = models.OneToOneField("people.Person", on_delete=models.PROTECT, related_name="child_mark")
    reason = models.CharField(max_length=10, choices=MarkReason.choices)
    marked_at = models.DateTimeField(default=timezone.now)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    guardian_consented_at = models.DateTimeField(null=True, blank=True)
    # A child's data without a guardian's consent: when its erasure is due (now, for a flag or a refusal).
    erasure_due_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"child mark ({self.reason})"


class GuardianRequestStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting the guardian")
    CONSENTED = "consented", _("The guardian consented")
    DECLINED = "declined", _("The guardian declined")
    SUPERSEDED = "superseded", _("Replaced by a newer request")


class GuardianRequest(PersonalData):
    """A request for a guardian's consent for the child ``person``, e-mailed as a one-use link."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="guardian_requests")
    guardian_email = EncryptedTextField(_("Guardian's e-mail"), max_length=254)
    language = models.CharField(max_length=10)
    purposes = models.JSONField(default=list)  # the declared purpose ids the guardian is asked to consent to
    # What to call once the guardian consents (a dotted path to a function taking the person), besides the signal.
    on_consent = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=10, choices=GuardianRequestStatus.choices, default=GuardianRequestStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    mailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"guardian request ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == GuardianRequestStatus.PENDING and self.expires_at > timezone.now()
