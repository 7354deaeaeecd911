"""Security events (policy §一(I)1.2): the device and software information of a request, and the
refusals of the risk rules, which a person can cite and the security role reviews.

Why three models:

* :class:`SecurityPeriod`: one per calendar month (UTC).  Its data key seals the addresses and
  browser identifiers of the month's events, and the random ``device_secret`` keys their device
  signatures.  When every event and refusal of the month is past its retention, the housekeeping
  deletes them and destroys the period's data key: what is left anywhere (a backup, the
  write-ahead log) can no longer be read, and the month's signatures can no longer be recomputed
  or linked to a later month's (the key rotates monthly and old keys are destroyed).
* :class:`SecurityEvent`: one request's IP address and user agent (encrypted under the period's
  key, not the person's: the Cybersecurity Law keeps network logs six months even after the
  person's erasure, PIPL 47 para 2), its coarse device signature, and what happened.
* :class:`Refusal`: a refusal by a risk rule, with a reference the refusal page shows, why the
  rule fired, the person's request for review and the security role's decision.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from piwarden.vault.fields import BlindIndexField, EncryptedTextField
from piwarden.vault.models import EncryptedModel

# As the consultation's references: no 0/O or 1/I, read aloud on the phone.
_REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 10
MESSAGE_MAX_LENGTH = 1000
REASON_MAX_LENGTH = 500


def new_reference() -> str:
    return "".join(_REFERENCE_ALPHABET[byte % 32] for byte in secrets.token_bytes(REFERENCE_LENGTH))


class SecurityPeriod(EncryptedModel):
    """A month's data key and device-signature key (see the module docstring)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    starts_on = models.DateField(unique=True, help_text="The first day (UTC) of the month.")
    # Sealed with the period's own data key by security.device (AEAD, associated data naming the
    # row): a key, not a person's data, so not an EncryptedTextField (those hold personal data).
    device_secret = models.BinaryField(help_text="Random key of the month's device signatures, sealed.")

    def __str__(self) -> str:
        return f"SecurityPeriod {self.starts_on:%Y-%m}"


class EventKind(models.TextChoices):
    CONSULTATION = "consultation", _("Consultation request submitted")
    RIGHTS = "rights", _("Rights request submitted")
    SIGN_IN = "sign_in", _("Visitor sign-in")
    SIGN_UP = "sign_up", _("Visitor sign-up")
    REFUSED = "refused", _("Request refused by a risk rule")


class SecurityEvent(EncryptedModel):
    """One request's device and software information.  ``person`` is set when the request is tied
    to a person (their consultation or rights request); ``about`` names it by its reference."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    occurred_at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    scope = models.CharField(max_length=20, help_text="The form or interface: consultation, rights, ...")
    address = EncryptedTextField(max_length=45, help_text="The client's IP address, as the site believes it.")
    user_agent = EncryptedTextField(max_length=500, help_text="The User-Agent header, cut to 500 characters.")
    device = models.CharField(max_length=16, help_text="Keyed signature of coarse traits (see security.device).")
    person = models.ForeignKey(  # indexed by security_event_person_idx (person, occurred_at), which it leads
        "people.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="security_events", db_index=False
    )
    about = models.CharField(max_length=20, blank=True, help_text="The reference of the request it concerns.")

    class Meta:
        indexes = [models.Index(fields=["person", "occurred_at"], name="security_event_person_idx")]

    def __str__(self) -> str:
        return f"SecurityEvent {self.kind} {self.occurred_at:%Y-%m-%d %H:%M}"


class Rule(models.TextChoices):
    RATE_LIMIT = "rate_limit", _("Too many requests in a short time (rate limit)")
    MANY_SUBMISSIONS = "many_submissions", _("Too many form submissions from one network in a day")
    CAPTCHA_FAILURES = "captcha_failures", _("Too many wrong verification codes")


# What each rule means for the person refused, and what to do (the rule's own label is the staff's):
# the refusal page and the API's refusal say it alike.
EXPLAINED = {
    Rule.RATE_LIMIT: _("Too many requests came from your network in a short time, so this one was not accepted."),
    Rule.MANY_SUBMISSIONS: _(
        "Too many forms were sent from your network today, so forms from it are not accepted until the day ends."
    ),
    Rule.CAPTCHA_FAILURES: _(
        "The verification code was answered wrongly too many times from your network, so forms from it are not "
        "accepted until the day ends."
    ),
}


class ReviewOutcome(models.TextChoices):
    LIFTED = "lifted", _("Lifted: the refusal was a mistake or is no longer needed")
    UPHELD = "upheld", _("Upheld: the refusal stands")


class Refusal(EncryptedModel):
    """A refusal by a risk rule: what the person cites, and what staff review.

    ``client`` is the keyed digest of the counter that refused (``ratelimit`` bucket); lifting sets
    that counter back to zero for its window, so the person may submit at once.  ``message`` is
    what the person wrote when asking for review, sealed under the period's key like the event.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    reference = models.CharField(max_length=REFERENCE_LENGTH, unique=True, default=new_reference, editable=False)
    occurred_at = models.DateTimeField(db_index=True)
    rule = models.CharField(max_length=20, choices=Rule.choices)
    scope = models.CharField(max_length=20)
    detail = models.JSONField(
        default=dict,
        help_text="Why the rule fired (count, limit, window seconds) and the client masked (network, keyed digest, "
        "browser and system families).",
    )
    client = BlindIndexField(null=False, blank=False, help_text="The refusing counter's bucket (keyed digest).")
    window_start = models.BigIntegerField(help_text="Unix seconds: the start of the refusing counter's window.")
    event = models.ForeignKey(SecurityEvent, on_delete=models.PROTECT, related_name="refusals")
    review_requested_at = models.DateTimeField(null=True, blank=True, db_index=True)
    message = EncryptedTextField(max_length=MESSAGE_MAX_LENGTH, help_text="The person's words asking for review.")
    review_language = models.CharField(max_length=10, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=ReviewOutcome.choices, blank=True)
    decision_reason = models.CharField(max_length=REASON_MAX_LENGTH, blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["client", "window_start"], name="security_refusal_client_idx")]

    def __str__(self) -> str:
        return f"Refusal {self.reference}"

    @property
    def awaiting_review(self) -> bool:
        return self.review_requested_at is not None and self.decided_at is None
