"""The 15-working-day clock of policy §六 over the 2026 schedule, and into 2027, not loaded, then loaded.

Every expected date is counted by hand in the comment above it, from the State Council's notice
for 2026 as the chinese-calendar library ships it: days off 1-3 Jan, 15-23 Feb, 4-6 Apr, 1-5 May, 19-21 Jun,
25-27 Sep, 1-7 Oct; make-up workdays 4 Jan (Sun), 14 Feb (Sat), 28 Feb (Sat), 9 May (Sat),
20 Sep (Sun), 10 Oct (Sat).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from piwarden.rights.actions import load_schedule
from piwarden.rights.clock import (
    LIBRARY_YEARS,
    day_of_receipt,
    due_date,
    is_working_day,
    load_calendar,
    working_days_between,
    working_days_left,
)

pytestmark = [pytest.mark.django_db, pytest.mark.duty("RGT-09")]

# A 2027 schedule for the tests, shaped like a notice (not the real one): New Year 1-3 Jan,
# Spring Festival 6-12 Feb with make-up Sundays 31 Jan and 20 Feb, and the other periods.
HOLIDAYS_2027 = (
    [date(2027, 1, d) for d in (1, 2, 3)]
    + [date(2027, 2, d) for d in range(6, 13)]
    + [date(2027, 4, d) for d in (3, 4, 5)]
    + [date(2027, 5, d) for d in range(1, 6)]
    + [date(2027, 6, d) for d in (9, 10, 11)]
    + [date(2027, 9, d) for d in (15, 16, 17)]
    + [date(2027, 10, d) for d in range(1, 8)]
)
WORKDAYS_2027 = [date(2027, 1, 31), date(2027, 2, 20), date(2027, 4, 25), date(2027, 9, 26), date(2027, 10, 9)]


def test_the_library_holds_the_2026_notice_including_make_up_workdays():
    assert 2026 in LIBRARY_YEARS
    assert 2027 not in LIBRARY_YEARS
    for holiday in (date(2026, 1, 1), date(2026, 2, 17), date(2026, 5, 4), date(2026, 10, 1)):
        assert not is_working_day(holiday)
    for saturday in (date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 10, 10)):
        assert is_working_day(saturday)
    assert is_working_day(date(2026, 9, 20))  # a Sunday
    assert is_working_day(date(2026, 12, 31))
    assert not is_working_day(date(2026, 3, 7))  # an ordinary Saturday


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # Spring Festival: Fri 6 Feb; 9-13 Feb (5), Sat 14 Feb (6), 15-23 off, 24-27 Feb (10),
        # Sat 28 Feb (11), 2-5 Mar (15).  Weekends only would have given Fri 27 Feb.
        (date(2026, 2, 6), date(2026, 3, 5)),
        # Received on the make-up Saturday itself (a working day, still not counted): 24-27 Feb (4),
        # Sat 28 Feb (5), 2-6 Mar (10), 9-13 Mar (15).
        (date(2026, 2, 14), date(2026, 3, 13)),
        # Labour Day: Thu 23 Apr; Fri 24 (1), 27-30 Apr (5), 1-5 May off, 6-8 May (8), Sat 9 May (9),
        # 11-15 May (14), Mon 18 May (15).
        (date(2026, 4, 23), date(2026, 5, 18)),
        # National Day: Fri 18 Sep; Sun 20 Sep (1), 21-24 Sep (5), 25-27 off, 28-30 Sep (8), 1-7 Oct off,
        # 8-9 Oct (10), Sat 10 Oct (11), 12-15 Oct (15).
        (date(2026, 9, 18), date(2026, 10, 15)),
        # Received on a holiday (1 Oct): 8-9 Oct (2), Sat 10 Oct (3), 12-16 Oct (8), 19-23 Oct (13),
        # 26-27 Oct (15).
        (date(2026, 10, 1), date(2026, 10, 27)),
        # An ordinary month: Fri 6 Mar; 9-13 (5), 16-20 (10), 23-27 Mar (15).
        (date(2026, 3, 6), date(2026, 3, 27)),
        # Received at the weekend: counting starts on Monday 9 Mar, as for Friday's receipt.
        (date(2026, 3, 7), date(2026, 3, 27)),
        (date(2026, 3, 8), date(2026, 3, 27)),
    ],
)
def test_due_dates_of_2026(received, due):
    result = due_date(received)
    assert (result.date, result.provisional, result.unknown_years) == (due, False, ())


def test_a_receipt_late_in_2026_runs_into_2027_provisionally_then_respects_its_loaded_schedule(alice):
    # Mon 21 Dec 2026: 22-25 Dec (4), 28-31 Dec (8); 2027 not loaded, weekends only: Fri 1 Jan (9),
    # 4-8 Jan (14), Mon 11 Jan (15).
    provisional = due_date(date(2026, 12, 21))
    assert provisional.date == date(2027, 1, 11)
    assert provisional.provisional
    assert provisional.unknown_years == (2027,)

    load_schedule(year=2027, holidays=HOLIDAYS_2027, workdays=WORKDAYS_2027, by=alice)

    # 1-3 Jan 2027 off: 4-8 Jan (13), 11-12 Jan (15).
    final = due_date(date(2026, 12, 21))
    assert final.date == date(2027, 1, 12)
    assert not final.provisional
    assert provisional.date <= final.date


def test_a_loaded_year_is_counted_with_its_holidays_and_make_up_days(alice):
    load_schedule(year=2027, holidays=HOLIDAYS_2027, workdays=WORKDAYS_2027, by=alice)
    # Fri 29 Jan 2027: Sun 31 Jan (1), 1-5 Feb (6), 6-12 Feb off, 15-19 Feb (11), Sat 20 Feb (12),
    # 22-24 Feb (15).  Weekends only would have given Fri 19 Feb.
    assert due_date(date(2027, 1, 29)).date == date(2027, 2, 24)


def test_a_loaded_year_replaces_the_library_for_that_year(alice):
    assert due_date(date(2026, 3, 6)).date == date(2026, 3, 27)
    holidays = [date(2026, 1, d) for d in (1, 2, 3)] + [date(2026, 3, d) for d in range(9, 19)]
    load_schedule(year=2026, holidays=holidays, workdays=[], by=alice)
    calendar = load_calendar()
    assert calendar.is_working_day(date(2026, 2, 17))  # the library's Spring Festival is gone
    assert not calendar.is_working_day(date(2026, 2, 14))  # and so is its make-up Saturday
    # 9-18 Mar off: 19-20 Mar (2), 23-27 (7), 30 Mar-3 Apr (12), 6-8 Apr (15).
    assert due_date(date(2026, 3, 6), calendar).date == date(2026, 4, 8)


def test_working_days_between_and_left():
    received = date(2026, 9, 18)
    due = due_date(received).date
    assert working_days_between(received, received) == 0
    assert working_days_between(received, date(2026, 9, 19)) == 0  # Saturday
    assert working_days_between(received, date(2026, 9, 20)) == 1  # the make-up Sunday
    assert working_days_between(received, date(2026, 10, 9)) == 10  # the day of the reminder
    assert working_days_between(received, due) == 15
    assert working_days_between(due, received) == -15
    assert working_days_left(due, today=received) == 15
    assert working_days_left(due, today=due) == 0
    assert working_days_left(due, today=date(2026, 10, 16)) == -1  # Friday: one working day overdue
    assert working_days_left(due, today=date(2026, 10, 17)) == -1  # the weekend adds none
    assert working_days_left(due, today=date(2026, 10, 19)) == -2


def test_the_day_of_receipt_is_the_day_in_china():
    assert day_of_receipt(datetime(2026, 2, 13, 15, 59, tzinfo=UTC)) == date(2026, 2, 13)
    assert day_of_receipt(datetime(2026, 2, 13, 16, 0, tzinfo=UTC)) == date(2026, 2, 14)  # 00:00 in Beijing
    with pytest.raises(ValueError, match="time zone"):
        day_of_receipt(datetime(2026, 2, 13, 16, 0))  # noqa: DTZ001  # the mistake it refuses
