"""The working-day schedules an operator loaded from the State Council's notices.

A year's notice lists the days off (放假) and the make-up workdays (调休上班): one
:class:`ScheduleYear` per loaded year and one :class:`ScheduleDay` per listed date.  Every other
day of a loaded year is a working day from Monday to Friday and a day off at the weekend.  A
loaded year replaces the data of the chinese-calendar library for that year (see ``clock``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


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
