"""Children's protection (policy §八; law CHD-01 to CHD-04).

Keyed on the child's :class:`~piwarden.people.models.Person`, not on an account, so that the same
rules cover a consultation request (which has no account) and, once the accounts app is wired to
them, an account opened by someone under the declared age:

* :class:`ChildMark`: this person's data is a child's.  Made when a guardian's consent is asked
  for (``reason = declared``) or when staff flag the data as a child's sent without a guardian's
  consent (``reason = flagged``, then erased promptly).  A marked person's consultation requests
  are hidden from every staff role not granted children's data (``staff.permissions``), and each
  opening by a role that is is audited.
* :class:`GuardianRequest`: one e-mailed request for a guardian's consent: the purposes they are
  asked to consent to, and the guardian's answer.  Its link carries the request's id signed with
  the site's key (``children.access.link_token``): nothing secret is stored, the link works once
  (the request is then answered) and until ``expires_at``.

Nothing of a child is stored before a guardian consents (CHD-01).  Until then a request belongs to
no person: what the child typed to sign up (``sign_up``) and the guardian's e-mail are sealed under
a data key of the request's own, with no blind index, so that nobody can be found by them and
destroying that key shreds them.  The guardian's consent creates the child's data from ``sign_up``
(the caller's ``on_consent``), links the request to the new person, re-seals the guardian's e-mail
under the person's key and destroys the request's key.  A refusal destroys the key and deletes the
request; so does the housekeeping for a request unanswered when its link expires
(``children.actions.expire_guardian_requests``).
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from piwarden.vault.fields import EncryptedTextField
from piwarden.vault.models import EncryptedModel

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


class GuardianRequest(EncryptedModel):
    """A request for a guardian's consent for a child, e-mailed as a one-use link.

    Before the guardian consents: ``person`` is empty, ``data_key`` is the request's own and
    ``sign_up`` holds the child's sealed data.  Once they consent: ``person`` is the child,
    ``data_key`` the child's and ``sign_up`` empty.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    person = models.ForeignKey(
        "people.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="guardian_requests"
    )
    guardian_email = EncryptedTextField(_("Guardian's e-mail"), max_length=254)
    # What the child gave (JSON, sealed), kept only until the guardian answers or the link expires.
    sign_up = EncryptedTextField(_("A child's data awaiting a guardian"), blank=True)
    language = models.CharField(max_length=10)
    purposes = models.JSONField(default=list)  # the declared purpose ids the guardian is asked to consent to
    # What creates the child's data from ``sign_up`` once the guardian consents: a dotted path to a
    # function of the sealed data (a dict) returning the child's Person (or None: it cannot now).
    on_consent = models.CharField(max_length=200)
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
