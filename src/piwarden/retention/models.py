"""Legal holds, and the clock the retention sweep last trusted.

A :class:`LegalHold` keeps data past its retention while a legal matter needs it (PIPL 47 para 2:
a period set by law, here by a court or an authority, not yet over): the privacy officer places
it on one person (every category of theirs) or on a whole category, with a reason and the day it
ends.  The sweep (:mod:`piwarden.retention.sweep`) leaves what a hold covers and says so; a hold
ends by itself on its last day or is lifted earlier, with a reason.  Both are audited.

:class:`SweepClock` is the one row that remembers the clock reading of the last sweep that
acted: a clock that jumps forward beyond ``PIWARDEN_RETENTION_CLOCK_SKEW`` hours from it (or from
the newest audit event) makes the sweep refuse instead of deleting early.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

REASON_MAX_LENGTH = 200


class LegalHoldQuerySet(models.QuerySet["LegalHold"]):
    def in_force(self, now: datetime.datetime | None = None) -> LegalHoldQuerySet:
        """Holds not lifted whose last day is today or later (the day in UTC)."""
        today = (now or timezone.now()).date()
        return self.filter(lifted_at__isnull=True, ends_on__gte=today)


class LegalHold(models.Model):
    person = models.ForeignKey("people.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=REASON_MAX_LENGTH)
    ends_on = models.DateField()
    placed_at = models.DateTimeField()
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_reason = models.CharField(max_length=REASON_MAX_LENGTH, blank=True)

    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            # A hold covers a person or a category, never both and never nothing.
            models.CheckConstraint(
                condition=(Q(person__isnull=False) & Q(category="")) | (Q(person__isnull=True) & ~Q(category="")),
                name="retention_hold_one_scope",
            )
        ]

    def __str__(self) -> str:
        return f"Legal hold {self.pk}"

    @property
    def scope(self) -> str:
        return f"person {self.person.reference}" if self.person is not None else f"category {self.category}"


class SweepClock(models.Model):
    """The clock reading of the last sweep that passed the clock guard (one row)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    trusted_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="retention_sweepclock_singleton")]

    def __str__(self) -> str:
        return f"sweep clock {self.trusted_at:%Y-%m-%d %H:%M}"
