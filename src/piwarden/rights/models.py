"""The rights app's data: the working-day schedules of the clock, and the rights requests.

The working-day schedules an operator loaded from the State Council's notices.

A year's notice lists the days off (放假) and the make-up workdays (调休上班): one
:class:`ScheduleYear` per loaded year and one :class:`ScheduleDay` per listed date.  Every other
day of a loaded year is a working day from Monday to Friday and a day off at the weekend.  A
loaded year replaces the data of the chinese-calendar library for that year (see ``clock``).

And the copies of people's data that answer their access and copy requests (:class:`Archive`).
"""

from __future__ import annotations

import datetime
import secrets
from datetime import date
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from uuid6 import uuid7

from piwarden.vault.fields import EncryptedTextField
from piwarden.vault.models import PersonalData


class DayKind(models.TextChoices):
    HOLIDAY = "holiday", _("Day off (official holiday)")
    WORKDAY = "workday", _("Make-up workday")


class ScheduleYear(models.Model):
    year = models.PositiveSmallIntegerField(primary_key=True)
    loaded_at = models.DateTimeField()
    loaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["year"]

    def __str__(self) -> str:
        return str(self.year)


class ScheduleDay(models.Model):
    schedule = models.ForeignKey(ScheduleYear, on_delete=models.CASCADE, related_name="days")
    date = models.DateField(unique=True)
    kind = models.CharField(max_length=10, choices=DayKind.choices)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date.isoformat()} {self.kind}"


# --- rights requests (policy §六, PIPL Arts 44-50) ------------------------------------------


def new_reference() -> str:
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I: read aloud on the phone
    return "".join(secrets.choice(alphabet) for _ in range(REFERENCE_LENGTH))


REFERENCE_LENGTH = 10


class RequestKind(models.TextChoices):
    ACCESS = "access", _("Access: see the personal information we hold about you")
    COPY = "copy", _("Copy: receive a copy of your personal information")
    CORRECTION = "correction", _("Correction: correct or complete your personal information")
    DELETION = "deletion", _("Deletion: delete your personal information")
    RESTRICTION = "restriction", _("Restriction: restrict or refuse the processing of your personal information")
    WITHDRAWAL = "withdrawal", _("Withdrawal of consent")
    EXPLANATION = "explanation", _("Explanation of how we process personal information")
    CANCELLATION = "cancellation", _("Account cancellation")
    DECEASED_RELATIVE = "deceased_relative", _("Request about a deceased close relative")
    COMPLAINT = "complaint", _("Complaint or question about this privacy policy")


class RequestStatus(models.TextChoices):
    AWAITING_VERIFICATION = "awaiting_verification", _("Awaiting verification of your e-mail address")
    RECEIVED = "received", pgettext_lazy("status of a rights request", "Received")
    IN_PROGRESS = "in_progress", _("In progress")
    EXTENDED = "extended", _("Extended")
    COMPLETED = "completed", _("Completed")
    REFUSED = "refused", _("Refused")


# The states in which a request is still open (the staff queue's and the clock's).
OPEN_STATUSES = (RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS, RequestStatus.EXTENDED)


class ActingAs(models.TextChoices):
    SELF = "self", _("For myself")
    GUARDIAN = "guardian_of_child_under_14", _("As the guardian of a child under 14")
    RELATIVE_OF_DECEASED = "close_relative_of_deceased", _("As a close relative of a deceased person")


class RefusalGround(models.TextChoices):
    """Why a request may be refused (seed §六 and PIPL).  The last two are the seed's own grounds
    that no law recognises: a refusal on them needs a second staff member's approval."""

    NOT_OWN_DATA = "not_own_data", _("The request concerns personal information that is not yours")
    UNVERIFIED = "identity_not_verified", _("Your identity or authority could not be verified")
    EXCESSIVE = "exceeds_reasonable_limits", _("The request clearly exceeds reasonable limits (repeated requests)")
    OTHERS_RIGHTS = "infringes_others", _("Answering would infringe the legitimate rights and interests of others")
    LEGAL_SECRECY = (
        "legal_secrecy",
        _("A law or administrative regulation requires secrecy, or no notice (PIPL 18, 45)"),
    )
    DECEASED_ARRANGED = "deceased_arranged_otherwise", _("The deceased person arranged otherwise (PIPL 49)")
    OTHER_LEGAL = "other_legal_ground", _("Another legal and legitimate reason (stated in the answer)")
    EXCESSIVE_TECHNICAL_MEANS = "excessive_technical_means", _("It would require excessive technical means")
    IMPRACTICAL = "impractical", _("It is impractical")


# Grounds the seed's policy names but the law does not recognise: a second staff member approves.
UNRECOGNISED_GROUNDS = frozenset({RefusalGround.EXCESSIVE_TECHNICAL_MEANS, RefusalGround.IMPRACTICAL})


class RightsRequest(PersonalData):
    """One request of a person to exercise a right, from the portal or the API.

    The requester is the :class:`~piwarden.people.models.Person` found (or created) by the e-mail
    they gave; every encrypted field is sealed under that person's data key.  ``received_on`` is
    the PRC day of receipt (``clock.day_of_receipt`` of ``submitted_at``: the person asked then;
    the verification only proves it was them, and counting from the earlier day is the safe side);
    ``due_on`` is ``clock.due_date(received_on)``, ``due_provisional`` when a year of that count is
    not known.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    reference = models.CharField(max_length=REFERENCE_LENGTH, unique=True, default=new_reference, editable=False)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="rights_requests")
    kind = models.CharField(_("Request"), max_length=20, choices=RequestKind.choices)
    status = models.CharField(
        max_length=24, choices=RequestStatus.choices, default=RequestStatus.AWAITING_VERIFICATION, db_index=True
    )
    language = models.CharField(max_length=10)
    acting_as = models.CharField(_("On whose behalf"), max_length=32, choices=ActingAs.choices, default=ActingAs.SELF)

    email = EncryptedTextField(_("E-mail"), max_length=254)
    details = EncryptedTextField(_("Details"), max_length=4000, blank=True)

    submitted_at = models.DateTimeField(db_index=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    received_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True, db_index=True)
    due_provisional = models.BooleanField(default=False)
    extended_due_on = models.DateField(null=True, blank=True)
    extension_reason = EncryptedTextField(_("Reason for the extension"), max_length=4000, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    outcome = EncryptedTextField(_("Result or reasons"), max_length=8000, blank=True)
    refusal_ground = models.CharField(max_length=32, choices=RefusalGround.choices, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    receipt_sent_at = models.DateTimeField(null=True, blank=True)
    # rights-queue: the staff queue.  A refusal on a ground the law does not recognise waits for a
    # second staff member's approval: proposed here (the person still sees "in progress"), refused
    # only once approved.  The reminder (working day 10) and the escalation (overdue) go out once.
    proposed_ground = models.CharField(max_length=32, choices=RefusalGround.choices, blank=True)
    proposed_reasons = EncryptedTextField(_("Proposed reasons for a refusal"), max_length=8000, blank=True)
    refusal_proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refusal_proposed_at = models.DateTimeField(null=True, blank=True)
    # rights-rest: the second staff member may reject the proposal instead, with a note for the proposer
    # (who keeps it in ``refusal_proposed_by``); the request stays open and nothing is sent to the person.
    rejected_ground = models.CharField(max_length=32, choices=RefusalGround.choices, blank=True)
    refusal_rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refusal_rejected_at = models.DateTimeField(null=True, blank=True)
    rejection_note = EncryptedTextField(_("Why the proposed refusal was rejected"), max_length=8000, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    reminder_mailed_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_mailed_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)  # the right executed (archive, erasure, ...)
    # A request about someone else's data executed on their record (a close relative of a deceased
    # person, PIPL 49; a guardian of a child under 14, PIPL 31): the record staff identified, and the
    # right executed on it.  Empty for
    # a person acting for themself, whose record is ``person``.
    subject = models.ForeignKey(
        "people.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="rights_requests_about"
    )
    executed_right = models.CharField(max_length=20, choices=RequestKind.choices, blank=True)

    class Meta:
        ordering = ["-submitted_at"]

    def __str__(self) -> str:
        return f"Rights request {self.reference}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def answer_due_on(self) -> date | None:
        """The date the answer is due now: the extended date once extended."""
        return self.extended_due_on or self.due_on

    @property
    def executed_as(self) -> str:
        """The right this request executes: its kind, or for a request about someone else (a deceased
        person, a guardian's child) the right staff executed on that record."""
        return self.executed_right or self.kind

    @property
    def record_id(self) -> Any:
        """The id of the Person whose record the request was executed on: the subject's, else the requester's."""
        return self.subject_id or self.person_id

    @property
    def awaits_approval(self) -> bool:
        """A refusal on a ground the law does not recognise, waiting for a second staff member."""
        return self.is_open and self.refusal_proposed_at is not None


class RequestStep(PersonalData):
    """One change of a request's state, as the person's status page lists it.

    ``note`` is what the person is told with the step (an extension's explanation, a result); it
    may hold personal data, so it is encrypted under the requester's data key like the request.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="rights_request_steps")
    request = models.ForeignKey(RightsRequest, on_delete=models.CASCADE, related_name="steps")
    at = models.DateTimeField()
    status = models.CharField(max_length=24, choices=RequestStatus.choices)
    note = EncryptedTextField(_("Note"), max_length=8000, blank=True)
    mailed_at = models.DateTimeField(null=True, blank=True)  # rights-queue: the person was e-mailed this step

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.status} at {self.at.isoformat()}"


class CodePurpose(models.TextChoices):
    VERIFY = "verify", _("Confirm a new request")
    FOLLOW = "follow", _("Follow a request")


CODE_DIGITS = 6
CODE_LIFETIME = datetime.timedelta(minutes=10)
CODE_ATTEMPTS = 3


class VerificationCode(PersonalData):
    """A one-time code e-mailed to the requester: 6 digits, 10 minutes, 3 tries.

    The code is checked against a keyed digest (``rights.codes.code_digest``: the blind-index PRF,
    whose key never enters the database, over the request, the purpose and the code), so a copy
    of the database does not give the codes, nor lets them be tried offline.  The mail task needs
    the code itself, and a task's arguments are stored in plaintext: so the code waits for it in
    ``sealed_code``, encrypted under the requester's data key, and is cleared once the e-mail
    went out (``None`` then means "sent").
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="rights_codes")
    request = models.ForeignKey(RightsRequest, on_delete=models.CASCADE, related_name="codes")
    purpose = models.CharField(max_length=10, choices=CodePurpose.choices)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    sealed_code = EncryptedTextField(max_length=CODE_DIGITS)

    class Meta:
        indexes = [models.Index(fields=["request", "purpose"], name="rights_code_request_idx")]

    def __str__(self) -> str:
        return f"Code for {self.purpose} (expires {self.expires_at.isoformat()})"


class ArchiveStatus(models.TextChoices):
    BUILDING = "building", _("Being prepared")
    READY = "ready", _("Ready to download")
    FAILED = "failed", _("Could not be prepared")


class Archive(models.Model):
    """A copy of everything about a person (PIPL 45): a sealed zip under the data directory.

    The file (``PIWARDEN_EXPORTS_DIR/<id>.zip.sealed``, :mod:`piwarden.rights.archive`) is
    encrypted under the person's own data key, so erasing them makes it unreadable even where a
    copy survives; this row says whose it is, for which request, how far its building got and
    when it expires (the declared retention of ``rights_archives``, counted from ``created_at``).
    ``sha256`` and ``size`` describe the plaintext zip, so a download can be checked.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="rights_archives")
    reference = models.CharField(max_length=40, help_text="The rights request this archive answers.")
    status = models.CharField(max_length=10, choices=ArchiveStatus.choices, default=ArchiveStatus.BUILDING)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    records_done = models.PositiveBigIntegerField(default=0)
    categories_done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="Records per category id, once ready.")
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["person", "created_at"], name="rights_archive_person_idx")]

    def __str__(self) -> str:
        return f"Archive {self.id} ({self.status})"
