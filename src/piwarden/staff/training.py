"""Whether a staff member's training is current (policy §五.5): the one check reveals ask.

A role that may reveal any personal data (a ``reveal`` entry in its ``[[roles]]``) needs an
attestation completed within ``PIWARDEN_TRAINING_MONTHS``.  Without one the staff member still
signs in and works, but every reveal is refused, saying why and what to do:
:func:`training_lapse` is what the reveal decisions ask (today ``inquiries.access`` and
``rights.access``), so that a lapse means the same everywhere.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from piwarden.policy.declaration import Role
from piwarden.staff import permissions
from piwarden.staff.models import TrainingRecord


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day ``months`` later; the month's last day when it has no such day (31 Jan + 1 → 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def today() -> datetime.date:
    """The PRC calendar day (``TIME_ZONE``): attestations are dated in it."""
    return timezone.localdate()


def needs_training(role: Role | None) -> bool:
    return permissions.reveals_personal_data(role)


def expires_on(completed_on: datetime.date) -> datetime.date:
    """The first day an attestation completed on ``completed_on`` no longer counts."""
    return add_months(completed_on, settings.PIWARDEN_TRAINING_MONTHS)


def latest_training(user: User) -> TrainingRecord | None:
    return TrainingRecord.objects.filter(staff_id=user.pk).order_by("-completed_on", "-id").first()


@dataclass(frozen=True)
class TrainingLapse:
    """Why reveals are suspended: no attestation at all, or one that expired on ``expired_on``."""

    expired_on: datetime.date | None

    @property
    def code(self) -> str:
        """For the audit log (English, fixed)."""
        if self.expired_on is None:
            return gettext_noop("no training recorded")
        return gettext_noop("training attestation expired")

    def message(self) -> str:
        """For the staff member, in their language: why, and what to do."""
        if self.expired_on is None:
            why = _("No data-protection training is recorded for you, and your role reveals personal information.")
        else:
            why = _("Your data-protection training attestation expired on %(date)s.") % {
                "date": self.expired_on.isoformat()
            }
        return " ".join(
            [
                why,
                _(
                    "Revealing personal information is suspended until a current training is recorded. "
                    "Complete the training and ask the privacy officer to record it."
                ),
            ]
        )


def training_lapse(user: User | None, role: Role | None, on: datetime.date | None = None) -> TrainingLapse | None:
    """None when ``user`` may reveal as far as training goes (their role reveals nothing, or their
    latest attestation is current on ``on``, today by default); otherwise the lapse."""
    if not needs_training(role):
        return None
    if user is None:
        return TrainingLapse(expired_on=None)
    # One column of one row: the check runs on every reveal.
    latest = TrainingRecord.objects.filter(staff_id=user.pk).order_by("-completed_on").values_list("completed_on")[:1]
    if not latest:
        return TrainingLapse(expired_on=None)
    ends = expires_on(latest[0][0])
    if (on or today()) >= ends:
        return TrainingLapse(expired_on=ends)
    return None
