"""Working hours on the PRC calendar: weekends, official holidays and make-up workdays."""

from __future__ import annotations

import datetime

import pytest

from piwarden.monitoring.rules import outside_hours
from piwarden.rights.clock import WorkingCalendar
from tests.monitoring.events import at_prc

HOURS = (datetime.time(9, 0), datetime.time(18, 0))
CALENDAR = WorkingCalendar()  # the library's schedules (2004-2026)


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize(
    ("moment", "outside"),
    [
        (at_prc(2026, 12, 3, 9, 0), False),  # Thursday, the first minute of the day's hours
        (at_prc(2026, 12, 3, 17, 59), False),
        (at_prc(2026, 12, 3, 18, 0), True),  # the end is exclusive
        (at_prc(2026, 12, 3, 8, 59), True),
        (at_prc(2026, 12, 5, 11, 0), True),  # Saturday
        (at_prc(2026, 10, 1, 11, 0), True),  # National Day, a Thursday
        (at_prc(2026, 10, 10, 11, 0), False),  # the make-up Saturday after National Day
        # 02:00 UTC on Friday 4 December is 10:00 in Beijing: the PRC clock decides, not UTC's.
        (datetime.datetime(2026, 12, 4, 2, 0, tzinfo=datetime.UTC), False),
        (datetime.datetime(2026, 12, 4, 11, 0, tzinfo=datetime.UTC), True),  # 19:00 in Beijing
    ],
)
def test_outside_working_hours_follows_the_prc_calendar(moment, outside):
    assert outside_hours(moment, CALENDAR, HOURS) is outside
