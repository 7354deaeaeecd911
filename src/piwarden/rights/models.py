"""The working-day schedules an operator loaded from the State Council's notices.

A year's notice lists the days off (放假) and the make-up workdays (调休上班): one
:class:`ScheduleYear` per loaded year and one :class:`ScheduleDay` per listed date.  Every other
day of a loaded year is a working day from Monday to Friday and a day off at the weekend.  A
loaded year replaces the data of the chinese-calendar library for that year (see ``clock``).

And the copies of people's data that answer their access and copy requests (:class:`Archive`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7


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
