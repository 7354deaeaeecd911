"""The incident register (policy §五.6): security incidents, the regulator's clock, and the notices.

An :class:`Incident` is about the company's systems, not about a person: its kind, grade, times,
the declared categories it touched and how many people (counts only), the cause and measures in
staff's words (the forms say not to write personal data there), the report to the regulator and
the texts of the notice.  It is declared as non-personal data.

A :class:`Notice` is one notice to one person (or to the guardians of one minor) about one
incident: it names the person by their random id, and holds when it was queued and sent and how
it ended.  It is declared as a category of its own (``incident_notices``).  The unique constraint
on (incident, person, recipient) is what makes "exactly once per person" hold however often the
officer presses *send* or the worker re-runs.

The state machine (SEC-04: the plan is activated before anything else)::

    detected → plan_activated → contained → reported → notified → closed

``reported`` may be passed over only for a *general* (一般) incident, which the reporting measures
do not require to be reported within hours; ``notified`` is reached by queuing the notices or by a
recorded decision not to notify (PIPL 57: the measures avoided the harm), never silently.
"""

from __future__ import annotations

import datetime
import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

TEXT_MAX_LENGTH = 4000
TITLE_MAX_LENGTH = 200


class Kind(models.TextChoices):
    LEAK = "leak", _("Personal information leaked")
    TAMPERING = "tampering", _("Personal information altered")
    LOSS = "loss", _("Personal information lost")
    UNAUTHORISED_ACCESS = "unauthorised_access", _("Unauthorised access")
    ATTACK = "attack", _("Network attack or malicious code")
    OUTAGE = "outage", _("Systems unavailable")
    OTHER = "other", _("Other incident")


class Grade(models.TextChoices):
    """The four grades of the national cybersecurity incident grading (网络安全事件分级)."""

    GENERAL = "general", _("General (一般)")
    RELATIVELY_MAJOR = "relatively_major", _("Relatively major (较大)")
    MAJOR = "major", _("Major (重大)")
    PARTICULARLY_MAJOR = "particularly_major", _("Particularly major (特别重大)")


# Grades of 较大 and above start the regulator's clock (IRM2025 Art 4).
REPORTABLE = frozenset({Grade.RELATIVELY_MAJOR, Grade.MAJOR, Grade.PARTICULARLY_MAJOR})
REPORT_WITHIN = datetime.timedelta(hours=4)  # to the provincial CAC
REPORT_WITHIN_CII = datetime.timedelta(hours=1)  # critical information infrastructure involved


class State(models.TextChoices):
    DETECTED = "detected", _("Detected")
    PLAN_ACTIVATED = "plan_activated", _("Plan activated")
    CONTAINED = "contained", _("Contained")
    REPORTED = "reported", _("Reported to the regulator")
    NOTIFIED = "notified", _("Persons notified, or not notifying decided")
    CLOSED = "closed", _("Closed")


ORDER = list(State)


def report_deadline(grade: str, detected_at: datetime.datetime, *, cii: bool) -> datetime.datetime | None:
    """When the report to the regulator is due: 4 hours after detection for 较大 and above,
    1 hour where critical information infrastructure is involved; none for a general incident."""
    if grade not in REPORTABLE:
        return None
    return detected_at + (REPORT_WITHIN_CII if cii else REPORT_WITHIN)


def new_slug() -> str:
    return secrets.token_hex(5)


class Incident(models.Model):
    slug = models.SlugField(max_length=20, unique=True, default=new_slug, editable=False)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    grade = models.CharField(max_length=30, choices=Grade.choices)
    cii = models.BooleanField(default=False, help_text="Critical information infrastructure is involved.")
    detected_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    categories = models.JSONField(default=list, help_text="The declared data categories affected (ids).")
    affected_persons = models.PositiveIntegerField(default=0)
    minors_affected = models.PositiveIntegerField(default=0)
    cause = models.TextField(max_length=TEXT_MAX_LENGTH)
    measures = models.TextField(max_length=TEXT_MAX_LENGTH, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DETECTED)
    plan_activated_at = models.DateTimeField(null=True, blank=True)
    contained_at = models.DateTimeField(null=True, blank=True)
    report_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    # The report's fields as the reporting measures list them (forms.ReportForm), kept as filed.
    report = models.JSONField(default=dict, blank=True)
    authority_requires_notice = models.BooleanField(default=False)
    # The notice's texts, each in Chinese and English (forms.NoticeForm): PIPL Art 57's contents.
    notice = models.JSONField(default=dict, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    no_notice_reason = models.TextField(max_length=TEXT_MAX_LENGTH, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The regulator clock's alerts, each raised once (incidents.actions.alert_report_deadlines).
    due_alerted_at = models.DateTimeField(null=True, blank=True)
    overdue_alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]

    def __str__(self) -> str:
        return f"incident {self.slug}"

    @property
    def report_overdue(self) -> bool:
        return self.report_due_at is not None and self.reported_at is None and timezone.now() > self.report_due_at

    @property
    def step(self) -> int:
        return ORDER.index(State(self.state))


class Recipient(models.TextChoices):
    PERSON = "person", _("The person")
    GUARDIAN = "guardian", _("The guardians of a minor")


class Notice(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="notices")
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="incident_notices")
    recipient = models.CharField(max_length=10, choices=Recipient.choices, default=Recipient.PERSON)
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    # "" while waiting; otherwise how it ended: sent, or why it could not be (no address held,
    # the person's data erased, no guardian address), never an address.
    outcome = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "person", "recipient"], name="incidents_notice_once")
        ]

    def __str__(self) -> str:
        return f"notice {self.pk} of {self.incident_id}"
