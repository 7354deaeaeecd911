"""Staff sign-in state: the TOTP authenticator (secret encrypted at rest) and console preferences.

Why our own device model and not django-otp's ``TOTPDevice``: that model keeps the shared
secret as hex in a plain column, so anyone with a copy of the database or a backup could mint
every staff member's codes.  :class:`Authenticator` is a django-otp ``Device`` (the middleware,
``is_verified()`` and the session's persistent id work unchanged) whose secret is an
``EncryptedTextField`` under a data key of its own, wrapped by the KEK like every person's data
key: without the KEK the secret cannot be read, and destroying the data key destroys the
secret everywhere, old backups included.

django-otp looks a device up by ``int(id)``; the vault binds every ciphertext to its row id and
needs that id before the INSERT.  Hence a random 62-bit integer chosen by the client.
"""

from __future__ import annotations

import re
import secrets
import time
from base64 import b32encode
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, User
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

from piwarden.vault import crypto
from piwarden.vault.fields import EncryptedTextField
from piwarden.vault.models import DataKey, EncryptedModel

SECRET_BYTES = 20  # RFC 4226's recommended 160 bits; what every authenticator app expects for SHA-1
_CODE = re.compile(r"[0-9]{6}")


def new_device_id() -> int:
    return secrets.randbits(62) + 1


class Authenticator(EncryptedModel, TimestampMixin, ThrottlingMixin, Device):  # type: ignore[misc,django-manager-missing]  # django_otp ships no type hints
    """One staff member's TOTP authenticator (6 digits, 30 s, SHA-1: what the apps support)."""

    STEP = 30
    DIGITS = 6
    TOLERANCE = 1  # the previous, current and next code: clocks of phones drift
    T0 = 0

    id = models.BigIntegerField(primary_key=True, default=new_device_id, editable=False)
    data_key = models.OneToOneField(DataKey, on_delete=models.PROTECT, related_name="+")  # a key of its own
    secret = EncryptedTextField(help_text="The shared TOTP secret, hex, encrypted under data_key.")
    drift = models.SmallIntegerField(default=0, help_text="Time steps the phone's clock is known to be off.")
    last_t = models.BigIntegerField(
        default=-1,
        help_text="Time step of the last accepted code: only a later step is accepted next (no replay).",
    )

    class Meta(Device.Meta):  # type: ignore[misc]  # django_otp ships no type hints
        verbose_name = "TOTP authenticator"

    def __str__(self) -> str:
        return f"Authenticator {self.pk}"

    @classmethod
    def enrol(cls, user: User, name: str = "authenticator", *, confirmed: bool = True) -> Authenticator:
        """A new authenticator with a fresh secret; run inside the caller's transaction.

        Unconfirmed, it signs no one in until its owner proves they scanned it (enrolment).
        """
        device = cls(user=user, name=name, confirmed=confirmed, data_key=crypto.create_data_key())
        device.secret = secrets.token_hex(SECRET_BYTES)
        device.save(force_insert=True)
        return device

    @property
    def bin_key(self) -> bytes:
        secret: str | None = self.secret
        if secret is None:  # the data key was destroyed: nothing can be verified any more
            raise crypto.DataKeyDestroyed(str(self.data_key_id))
        return bytes.fromhex(secret)

    def verify_token(self, token: object) -> bool:
        """True for a code of a time step later than the last accepted one; throttled after failures."""
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        verified = False
        if isinstance(token, str) and _CODE.fullmatch(token) and self.secret is not None:
            totp = TOTP(self.bin_key, self.STEP, self.T0, self.DIGITS, self.drift)
            totp.time = time.time()
            # min_t = last_t + 1 is what refuses a replayed code, even within its own 30 seconds.
            verified = bool(totp.verify(int(token), self.TOLERANCE, self.last_t + 1))
            if verified:
                self.last_t = totp.t()
                self.drift = totp.drift
                self.throttle_reset(commit=False)
                self.set_last_used_timestamp(commit=False)
                self.save(
                    update_fields=[
                        "last_t",
                        "drift",
                        "throttling_failure_count",
                        "throttling_failure_timestamp",
                        "last_used_at",
                    ]
                )
        if not verified:
            self.throttle_increment(commit=True)
        return verified

    def throttle_increment(self, commit: bool = True) -> None:
        super().throttle_increment(commit=False)
        if commit:
            self.save(update_fields=["throttling_failure_count", "throttling_failure_timestamp"])

    def get_throttle_factor(self) -> int:
        return 1

    @property
    def config_url(self) -> str:
        """The otpauth:// link an authenticator app scans (Google's Key Uri Format)."""
        issuer = settings.OTP_TOTP_ISSUER.replace(":", "")
        label = f"{issuer}:{self.user.get_username()}" if issuer else self.user.get_username()
        params = {
            "secret": b32encode(self.bin_key).decode("ascii").rstrip("="),
            "algorithm": "SHA1",
            "digits": self.DIGITS,
            "period": self.STEP,
        }
        if issuer:
            params["issuer"] = issuer
        return f"otpauth://totp/{quote(label)}?{urlencode(params, quote_via=quote)}"


class StaffPreference(models.Model):
    """A staff member's choices for the console.  Absent or blank: follow the browser."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="staff_preference")
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, blank=True)

    def __str__(self) -> str:
        return f"Preferences of user {self.user_id}"


def preferred_language(user: AbstractBaseUser) -> str:
    """The console language the staff member chose, or '' when they have not chosen one."""
    language = StaffPreference.objects.filter(user_id=user.pk).values_list("language", flat=True).first()
    return language or ""


class KnownDevice(models.Model):
    """A browser a staff member signed in from, known by a keyed hash of its device cookie.

    The cookie holds a long random value and nothing else; only its HMAC under a key derived from
    the site's secret key is stored, so the table names no browser, address or user agent, and a
    copy of the database cannot be turned back into a cookie that passes as a known device.  A
    sign-in whose cookie's hash is not here for that account is from a new device: it is recorded
    and the staff member is e-mailed (:mod:`piwarden.staff.mail`).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, help_text="HMAC-SHA256 of the device cookie (staff.devices).")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    alerted_at = models.DateTimeField(null=True, blank=True, help_text="When the new-device e-mail went out.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "digest"], name="staff_known_device_unique")]

    def __str__(self) -> str:
        return f"Device {self.pk} of user {self.user_id}"


MAX_GRANT_HOURS = 8  # one working day at most: a longer need is a role, decided as one


class AccessGrant(models.Model):
    """A time-limited permission for one staff member to reveal one category for one purpose.

    With ``person``, an approval ticket for one child's record (CHD-03): it lets a role that may
    see children's data and reveal the category for the purpose reveal *this* child's values; it
    widens nothing else.

    Asked for with a reason by a role that declares the pair ``grantable``, decided by a second
    staff member whose role may ``approve_grants``; it counts from its approval and lapses by
    itself ``hours`` later (``staff.access`` reads ``expires_at``; the expiry's audit event is
    written by ``staff.actions.expire_grants``).
    """

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
        DECLINED = "declined", _("Declined")
        EXPIRED = "expired", _("Expired")

    requester = models.ForeignKey(User, on_delete=models.PROTECT, related_name="access_grants")
    category = models.CharField(max_length=40)
    purpose = models.CharField(max_length=40)
    reason = models.CharField(max_length=200)
    hours = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # A child's record (policy §八, CHD-03): a ticket to reveal this one child's data, nothing else.
    # Empty: a grant of the category as a whole.
    person = models.ForeignKey(
        "people.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="child_tickets"
    )

    class Meta:
        indexes = [models.Index(fields=["requester", "status"])]

    def __str__(self) -> str:
        return f"Grant {self.pk}"


# --- access reviews (policy §五.3: a periodic check of who has access and what they did with it) ---


class AccessReview(models.Model):
    """One campaign: every active staff member's access as it stood when it opened, to confirm or revoke.

    Signed when every line is decided: ``document`` is the canonical JSON of the campaign and its
    decisions (:mod:`piwarden.staff.reviews`), ``signature`` its Ed25519 signature under the audit
    signing key, so that an edit of the stored review (the rows or the document) is detected by
    whoever holds the public key.
    """

    opened_at = models.DateTimeField()
    opened_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField(help_text="Reveals from here (inclusive) are summarised.")
    period_end = models.DateTimeField(help_text="… up to here (exclusive): the opening.")
    deadline = models.DateTimeField(help_text="Access still unreviewed then is suspended.")
    enforced_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    mailed_at = models.DateTimeField(null=True, blank=True, help_text="When the reviewers were told it opened.")
    document = models.TextField(blank=True, help_text="Canonical JSON of the campaign and its decisions, as signed.")
    signature = models.TextField(blank=True, help_text="Base64 Tink Ed25519 signature of the document.")

    class Meta:
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"Access review {self.pk}"

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None


class Decision(models.TextChoices):
    PENDING = "pending", _("Awaiting review")
    CONFIRMED = "confirmed", _("Confirmed")
    REVOKED = "revoked", _("Revoked")
    SUSPENDED = "suspended", _("Suspended: not reviewed by the deadline")


class AccessReviewLine(models.Model):
    """One staff member's access in a campaign: roles, grants and reveals as they stood at the opening.

    ``reveals`` holds counts only (per category and purpose, and of distinct people), from the
    audit log's reveal events; never a personal value.  ``grants`` lists the time-limited grants of
    personal data held at the opening (empty until grants exist).
    """

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="lines")
    staff = models.ForeignKey(User, on_delete=models.PROTECT, related_name="access_review_lines")
    roles = models.JSONField(default=list)
    grants = models.JSONField(default=list, blank=True)
    reveals = models.JSONField(default=list, blank=True)
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING)
    decided_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["review", "id"]
        constraints = [models.UniqueConstraint(fields=["review", "staff"], name="one_line_per_staff_per_review")]

    def __str__(self) -> str:
        return f"Review {self.review_id}, staff {self.staff_id}: {self.decision}"


# --- training (policy §五.5) ------------------------------------------------------------------


class TrainingRecord(models.Model):
    """A course a staff member completed, and who recorded it (None: the operator, at the command line)."""

    staff = models.ForeignKey(User, on_delete=models.CASCADE, related_name="training_records")
    course = models.CharField(max_length=200)
    completed_on = models.DateField()
    recorded_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-completed_on", "-id"]

    def __str__(self) -> str:
        return f"Training of staff {self.staff_id} on {self.completed_on}"


class TrainingNotice(models.Model):
    """A notice that an attestation expires soon or has expired: one per kind and expiry (sent once)."""

    class Kind(models.TextChoices):
        DUE_SOON = "due_soon", _("Training attestation expires soon")
        EXPIRED = "expired", _("Training attestation expired")

    staff = models.ForeignKey(User, on_delete=models.CASCADE, related_name="training_notices")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    expires_on = models.DateField(help_text="The expiry the notice is about (a renewal starts a new one).")
    created_at = models.DateTimeField()
    mailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["staff", "kind", "expires_on"], name="one_training_notice_per_expiry")
        ]

    def __str__(self) -> str:
        return f"{self.kind} notice to staff {self.staff_id} ({self.expires_on})"


# --- deactivation (the clock of a staff account's retention) ------------------------------------


class Deactivation(models.Model):
    """When a staff account was deactivated: present while it is inactive, gone when it is reactivated.

    The declared retention of ``staff_accounts`` and ``staff_training`` (1095 days) counts from
    ``deactivated_at`` (:mod:`piwarden.retention.rules`).  Written by the write paths that deactivate
    and reactivate (``staff.actions.suspend_staff``, ``reactivate_staff``; the staff member's eraser
    ``staff.personal_data.deactivate_account``), and removed with the account's personal data once
    the retention ends (``staff.personal_data.delete_accounts``).
    """

    user = models.OneToOneField(User, primary_key=True, on_delete=models.CASCADE, related_name="deactivation")
    deactivated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Staff account {self.user_id} deactivated {self.deactivated_at:%Y-%m-%d}"
