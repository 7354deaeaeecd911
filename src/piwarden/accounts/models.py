"""Visitor accounts (issue 9 §1; policy §二 "login logs", §八 children).

A visitor account is **not** a Django ``auth.User``.  Staff are ``auth.User`` rows signed in
through Django's session (``sessionid``, ``_auth_user_id``) with a TOTP step; a visitor is an
:class:`Account` signed in through a cookie and a table of its own (:class:`AccountSession`,
``piwarden_account``), read by :mod:`piwarden.accounts.sessions`.  Neither side reads the other's
cookie or table, so no visitor session can ever pass ``request.user.is_authenticated`` (the
staff console's test) and no staff session is ever a visitor's.

Every identifying value is sealed under the person's data key (``email``, ``phone``,
``date_of_birth``, ``guardian_email``); sign-in finds the account by the blind index of the
e-mail.  The password is kept as an Argon2id hash (Django's ``Argon2PasswordHasher``), never
truncated: Django hashes the whole string.

The login log (:class:`LoginRecord`) outlives the account: the Cybersecurity Law asks for network
logs to be kept six months, so cancelling the account deletes it and crypto-shreds the person but
keeps their login records, linked to the (erased) Person row and sealed under a key of the log's
own, until the housekeeping deletes them after the declared 184 days.
"""

from __future__ import annotations

import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from piwarden.vault.fields import BlindIndexField, EncryptedTextField
from piwarden.vault.models import DataKey, EncryptedModel, PersonalData

# The declared purpose and categories (policy/declaration.toml).
PURPOSE = "visitor_account"
CATEGORY = "visitor_accounts"
LOG_CATEGORY = "account_login_log"
SESSION_CATEGORY = "visitor_sessions"
STATE_CATEGORY = "visitor_account_state"


class AccountState(models.TextChoices):
    UNVERIFIED = "unverified", _("E-mail address not confirmed yet")
    PENDING_GUARDIAN = "pending_guardian", _("Pending guardian consent")
    ACTIVE = "active", _("Active")


class Account(PersonalData):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    email = EncryptedTextField(_("E-mail"), max_length=254)
    email_index = BlindIndexField(unique=True, null=False, blank=False)
    phone = EncryptedTextField(_("Mobile number"), max_length=32, blank=True)
    date_of_birth = EncryptedTextField(_("Date of birth"), max_length=10)
    guardian_email = EncryptedTextField(_("Guardian's e-mail"), max_length=254, blank=True)
    password = models.CharField(max_length=256, help_text="Argon2id hash (Django's hasher string).")
    state = models.CharField(max_length=20, choices=AccountState.choices, default=AccountState.UNVERIFIED)
    needs_guardian = models.BooleanField(default=False, help_text="Under 14 at sign-up: a guardian must consent.")
    language = models.CharField(max_length=10)
    created_at = models.DateTimeField(auto_now_add=True)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    guardian_consented_at = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    # The number of the latest material policy version whose notice the holder closed while signed in
    # (0: none): the notice stays closed on every device they sign in from (piwarden.policy.notice).
    notice_dismissed = models.PositiveIntegerField(default=0)
    # The login log's own key: not the person's, so that crypto-shredding the person at
    # cancellation leaves the log readable for its declared retention.
    log_key = models.ForeignKey(DataKey, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Account {self.pk}"

    @property
    def may_sign_in(self) -> bool:
        return self.state == AccountState.ACTIVE

    @property
    def has_totp(self) -> bool:
        return self.authenticators.filter(confirmed=True).exists()


class AccountSession(models.Model):
    """One signed-in browser.  The cookie holds a random token; only its SHA-256 is stored here."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sessions")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the cookie's random token.")
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    second_factor_pending = models.BooleanField(
        default=False, help_text="Password checked, TOTP code not yet: signs in to nothing but the code page."
    )

    def __str__(self) -> str:
        return f"AccountSession {self.pk}"


class LoginResult(models.TextChoices):
    SUCCESS = "success", _("Signed in")
    WRONG_PASSWORD = "wrong_password", _("Wrong password")  # a label, not a password
    WRONG_CODE = "wrong_code", _("Wrong authenticator code")
    THROTTLED = "throttled", _("Refused: too many attempts")
    CAPTCHA = "captcha", _("Refused: verification code missing or wrong")
    NOT_VERIFIED = "not_verified", _("Refused: e-mail address not confirmed")
    PENDING_GUARDIAN = "pending_guardian", _("Refused: waiting for a guardian's consent")
    SIGNED_OUT = "signed_out", _("Signed out")


class LoginRecord(EncryptedModel):
    """One sign-in attempt on an account (the login log the holder sees on the account page).

    The address is truncated before it is stored (IPv4 to its /24, IPv6 to its /48): enough to
    tell the holder roughly where a sign-in came from and to investigate an attack, not enough to
    name one household.  Address and user agent are sealed under the account's log key.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="account_login_records")
    occurred_at = models.DateTimeField(db_index=True)
    result = models.CharField(max_length=20, choices=LoginResult.choices)
    ip_prefix = EncryptedTextField(_("Network (truncated address)"), max_length=64)
    user_agent = EncryptedTextField(_("Browser"), max_length=300)

    class Meta:
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"LoginRecord {self.pk}"


class MailKind(models.TextChoices):
    VERIFY = "verify", "verify"
    ALREADY_REGISTERED = "already_registered", "already registered"
    RESET = "reset", "reset"
    PASSWORD_CHANGED = "password_changed", "password changed"  # a kind, not a password


class AccountMail(models.Model):
    """An e-mail to an account holder, waiting for its task (which takes this row's id only).

    A row without an account is the reset asked for an unknown address: written all the same,
    so that known and unknown addresses cost the same statements; its task deletes it.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE, related_name="mails")
    kind = models.CharField(max_length=20, choices=MailKind.choices)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"AccountMail {self.kind} {self.pk}"


class AccountAuthenticator(EncryptedModel):
    """A visitor's optional TOTP authenticator (6 digits, 30 s, SHA-1), its secret under the person's key.

    Not django-otp's ``Device``: that model belongs to ``auth.User`` (staff).  The verification
    is django-otp's own ``TOTP`` class, with the staff authenticator's replay rule (a code of a
    time step already used is refused).
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="authenticators")
    secret = EncryptedTextField(help_text="The shared TOTP secret, hex, under the person's data key.")
    confirmed = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    last_t = models.BigIntegerField(default=-1, help_text="Time step of the last accepted code (no replay).")

    def __str__(self) -> str:
        return f"AccountAuthenticator {self.pk}"


SESSION_IDLE = datetime.timedelta(minutes=30)
SESSION_MAX = datetime.timedelta(hours=12)
LOG_RETENTION = datetime.timedelta(days=184)
