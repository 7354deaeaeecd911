"""Write paths of the rights app: each an entry point in its own durable transaction, audited."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from piwarden.audit.log import EventType, record_event
from piwarden.rights.models import DayKind, ScheduleDay, ScheduleYear

# The Measures on National Annual Holidays and Memorial Days (全国年节及纪念日放假办法), as
# amended with effect from 2025: 13 statutory days off a year, New Year's Day among them.  The
# notice's days off include them (and the weekends it joins to them), so a list with fewer is
# missing a range.
STATUTORY_DAYS_OFF = 13
FIRST_YEAR, LAST_YEAR = 2000, 2099
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ScheduleError(ValueError):
    """A schedule that cannot be the State Council's notice for its year; the message says why."""


@dataclass(frozen=True)
class ReplacedSchedule:
    loaded_at: datetime
    loaded_by: str  # the staff account's user name
    holidays: int
    workdays: int


@dataclass(frozen=True)
class LoadedSchedule:
    year: int
    holidays: tuple[date, ...]
    workdays: tuple[date, ...]
    replaced: ReplacedSchedule | None  # what had been loaded for that year before


def check_schedule(year: int, holidays: Iterable[date], workdays: Iterable[date]) -> None:
    """Refuse what an operator copying a notice can get wrong, with a message that says what."""
    holidays, workdays = set(holidays), set(workdays)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ScheduleError(f"{year} is not a year this clock can hold ({FIRST_YEAR} to {LAST_YEAR}).")
    for day in sorted(holidays | workdays):
        if day.year != year:
            raise ScheduleError(
                f"{day.isoformat()} is not in {year}: a schedule holds the dates of its own year only "
                f"(load {day.year} separately, from its own notice)."
            )
    if both := sorted(holidays & workdays):
        raise ScheduleError(
            f"{', '.join(d.isoformat() for d in both)} given both as a day off and as a make-up workday."
        )
    if weekdays := [d for d in sorted(workdays) if d.weekday() < 5]:  # noqa: PLR2004  # Monday..Friday
        day = weekdays[0]
        raise ScheduleError(
            f"{day.isoformat()} is a {_WEEKDAYS[day.weekday()]}: a make-up workday (调休) is a Saturday or "
            "Sunday that the notice makes a working day; Monday to Friday are working days already."
        )
    if date(year, 1, 1) not in holidays:
        raise ScheduleError(
            f"{year}-01-01 is not among the days off, but New Year's Day is a day off every year: "
            f"check that these dates are the notice for {year}."
        )
    if len(holidays) < STATUTORY_DAYS_OFF:
        raise ScheduleError(
            f"Only {len(holidays)} days off given; the statutory holidays alone are {STATUTORY_DAYS_OFF} "
            "days a year: a range is missing (write each period as FIRST..LAST, both days included)."
        )


@transaction.atomic(durable=True)
def load_schedule(*, year: int, holidays: Iterable[date], workdays: Iterable[date], by: User) -> LoadedSchedule:
    """Put a year's schedule from the State Council's notice in place of what the clock knew.

    Replaces the library's data and any schedule loaded before for that year; the
    ``rights.schedule_loaded`` event records every date, who loaded them and what was replaced.
    """
    holidays, workdays = tuple(sorted(set(holidays))), tuple(sorted(set(workdays)))
    check_schedule(year, holidays, workdays)
    before = ScheduleYear.objects.select_for_update().select_related("loaded_by").filter(year=year).first()
    replaced, replaced_record = None, None
    if before is not None:
        kinds = list(before.days.values_list("kind", flat=True))
        replaced = ReplacedSchedule(
            loaded_at=before.loaded_at,
            loaded_by=before.loaded_by.get_username(),
            holidays=kinds.count(DayKind.HOLIDAY),
            workdays=kinds.count(DayKind.WORKDAY),
        )
        replaced_record = {
            "loaded_at": before.loaded_at.isoformat(),
            "loaded_by": before.loaded_by_id,
            "holidays": replaced.holidays,
            "workdays": replaced.workdays,
        }
        before.days.all().delete()
    schedule, _ = ScheduleYear.objects.update_or_create(
        year=year, defaults={"loaded_at": timezone.now(), "loaded_by": by}
    )
    ScheduleDay.objects.bulk_create(
        [ScheduleDay(schedule=schedule, date=d, kind=DayKind.HOLIDAY) for d in holidays]
        + [ScheduleDay(schedule=schedule, date=d, kind=DayKind.WORKDAY) for d in workdays]
    )
    record_event(
        EventType.SCHEDULE_LOADED,
        actor=by,
        extra={
            "year": year,
            "holidays": [d.isoformat() for d in holidays],
            "workdays": [d.isoformat() for d in workdays],
            "replaced": replaced_record,
        },
    )
    return LoadedSchedule(year=year, holidays=holidays, workdays=workdays, replaced=replaced)
