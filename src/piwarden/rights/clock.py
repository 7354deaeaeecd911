"""The PRC working-day clock of policy §六: a request is answered by the 15th working day.

A working day is Monday to Friday unless the State Council's notice for the year makes it a day
off (放假), plus the Saturdays and Sundays the notice makes make-up workdays (调休上班).  Where
each year's notice comes from, in order:

1. a schedule an operator loaded (``piwarden rights load-schedule``, :mod:`piwarden.rights.models`);
2. the chinese-calendar library, which ships the notices of 2004 to 2026;
3. nothing: the year is *not known*, and only weekends are days off.

Counting a year that is not known treats its holidays as working days, so the due date usually
comes earlier than the final one; but a make-up Saturday or Sunday inside the period whose
holiday lies outside it (before the receipt or after the due date) is counted as a day off and
makes the date later.  Counted over the library's years 2005-2026, weekends only gave a later
date for 4% of the days of receipt, by one or two working days.  Such a date is therefore
*provisional*: it is shown as such and names the years whose schedule an operator should load.

Reading: :func:`load_calendar` reads the loaded schedules in two queries; every other function
takes the calendar it returns (or loads one), so a page that shows many due dates reads once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from chinese_calendar import constants as library

from piwarden.prepared import PreparedSelect
from piwarden.rights.models import DayKind, ScheduleDay, ScheduleYear

RESPONSE_WORKING_DAYS = 15  # policy §六: "within 15 working days"
PRC_TIME = ZoneInfo("Asia/Shanghai")  # the calendar's days are China Standard Time days, whatever TIME_ZONE says

_LIBRARY_HOLIDAYS = frozenset(library.holidays)
_LIBRARY_WORKDAYS = frozenset(library.workdays)
LIBRARY_YEARS = range(min(d.year for d in _LIBRARY_HOLIDAYS), max(d.year for d in _LIBRARY_HOLIDAYS) + 1)


@dataclass(frozen=True)
class WorkingCalendar:
    """The days off and make-up workdays of every known year.

    The years an operator loaded (``loaded_years``, their dates in ``holidays`` and
    ``workdays``) take the place of the library's; the library's years are known too; any
    other year counts its weekends only.
    """

    loaded_years: frozenset[int] = frozenset()
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    def is_known(self, year: int) -> bool:
        return year in self.loaded_years or year in LIBRARY_YEARS

    def is_working_day(self, day: date) -> bool:
        if day.year in self.loaded_years:
            holidays, workdays = self.holidays, self.workdays
        else:
            holidays, workdays = _LIBRARY_HOLIDAYS, _LIBRARY_WORKDAYS
        if day in workdays:
            return True
        return day not in holidays and day.weekday() < 5  # noqa: PLR2004  # Monday..Friday


# Every verification asks: the statement compiled once per process.
_LOADED_YEARS = PreparedSelect(lambda: ScheduleYear.objects.values_list("year"), streamed=False)


def load_calendar() -> WorkingCalendar:
    """The library's schedules with every year an operator loaded put in their place (two queries)."""
    loaded = frozenset(year for (year,) in _LOADED_YEARS.rows())
    if not loaded:
        return WorkingCalendar()
    days = ScheduleDay.objects.values_list("date", "kind")
    return WorkingCalendar(
        loaded_years=loaded,
        holidays=frozenset(d for d, kind in days if kind == DayKind.HOLIDAY),
        workdays=frozenset(d for d, kind in days if kind == DayKind.WORKDAY),
    )


@dataclass(frozen=True)
class DueDate:
    """When the answer to a request received on ``received`` is due.

    ``provisional`` when the count ran through a year whose schedule is not known
    (``unknown_years``): that year's weekends only were days off.
    """

    received: date
    date: date
    unknown_years: tuple[int, ...] = field(default=())

    @property
    def provisional(self) -> bool:
        return bool(self.unknown_years)


def _days_after(start: date) -> Iterable[date]:
    day = start
    while True:
        day += timedelta(days=1)
        yield day


def day_of_receipt(received_at: datetime) -> date:
    """The PRC calendar day on which a request arrived (a request at 23:30 UTC arrived the next day)."""
    if received_at.tzinfo is None:
        raise ValueError("the moment of receipt must carry its time zone")
    return received_at.astimezone(PRC_TIME).date()


def due_date(received: date, calendar: WorkingCalendar | None = None) -> DueDate:
    """The 15th working day after ``received`` (the day of receipt itself is not counted)."""
    calendar = calendar or load_calendar()
    counted = 0
    unknown: set[int] = set()
    for day in _days_after(received):
        if not calendar.is_known(day.year):
            unknown.add(day.year)
        if calendar.is_working_day(day):
            counted += 1
            if counted == RESPONSE_WORKING_DAYS:
                return DueDate(received=received, date=day, unknown_years=tuple(sorted(unknown)))
    raise AssertionError("unreachable: every week has working days")  # pragma: no cover


def working_days_between(start: date, end: date, calendar: WorkingCalendar | None = None) -> int:
    """How many working days lie after ``start`` up to and including ``end``; negative when
    ``end`` comes first.  ``working_days_between(received, today)`` is the working day a
    request is on (0 on the day of receipt)."""
    if end < start:
        return -working_days_between(end, start, calendar)
    calendar = calendar or load_calendar()
    return sum(calendar.is_working_day(start + timedelta(days=n)) for n in range(1, (end - start).days + 1))


def working_days_left(due: date, today: date, calendar: WorkingCalendar | None = None) -> int:
    """Working days left until ``due``: 0 on the due date itself, negative after it (-1 on the
    first working day after it; a weekend straight after it is still 0, so whether a request is
    overdue is ``today > due``)."""
    return working_days_between(today, due, calendar)


def is_working_day(day: date, calendar: WorkingCalendar | None = None) -> bool:
    return (calendar or load_calendar()).is_working_day(day)
