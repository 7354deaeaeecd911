"""Alerts raised by the monitoring rules (:mod:`piwarden.monitoring.rules`), and how far they read.

An alert names the staff account concerned by id and the audit events it stands on by their
sequence numbers, with counts and times: never a personal value, so that the security auditor,
who may read no personal data, reads it whole.  Each audit event is counted into at most one
alert of each rule (``last_seq`` is unique per rule, and a rule counts only events after the
last alert of the same rule and staff member).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

NOTE_MAX_LENGTH = 500


class Rule(models.TextChoices):
    BULK_REVEALS = "bulk_reveals", _("Many reveals of personal data by one staff member")
    OFF_HOURS_REVEALS = "off_hours_reveals", _("Reveals of personal data outside working hours")
    SIGN_IN_FAILURES = "sign_in_failures", _("Repeated failed sign-ins to one staff account")
    SIGN_IN_FAILURES_ALL = "sign_in_failures_all", _("Many failed staff sign-ins, all accounts together")
    REFUSAL_BURST = "refusal_burst", _("A burst of refusals by the processing gate")
    # Not over the audit log: the incident register's regulator clock (piwarden.incidents.actions).
    INCIDENT_REPORT_DUE = "incident_report_due", _("An incident report to the regulator is due soon")
    INCIDENT_REPORT_OVERDUE = "incident_report_overdue", _("An incident report to the regulator is overdue")
    CLOCK_AHEAD = "clock_ahead", _("The clock jumped ahead: the retention sweep refused to delete")


class MonitorCursor(models.Model):
    """The last audit event (by ``seq``) the rules examined: one row, locked by the run."""

    last_seq = models.BigIntegerField(default=0)
    examined_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"monitor at #{self.last_seq}"


class Alert(models.Model):
    rule = models.CharField(max_length=30, choices=Rule.choices)
    # The staff member concerned (None: a rule over everyone, such as the overall sign-in failures).
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    events = models.PositiveIntegerField(help_text="Audit events counted into the alert.")
    threshold = models.PositiveIntegerField(help_text="The rule's limit when the alert was raised (more raises).")
    window_minutes = models.PositiveIntegerField(help_text="The rule's window when the alert was raised.")
    first_seq = models.BigIntegerField(help_text="The first audit event counted (its seq).")
    last_seq = models.BigIntegerField(help_text="The last audit event counted (its seq).")
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    raised_at = models.DateTimeField(db_index=True)
    mailed_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The auditor's own words: free text, declared with the alerts (they are told not to write personal data).
    note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["rule", "last_seq"], name="monitoring_alert_once")]

    def __str__(self) -> str:
        return f"alert {self.pk} {self.rule} #{self.first_seq}–#{self.last_seq}"

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None
