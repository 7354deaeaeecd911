"""``piwarden rights due-date`` and ``load-schedule`` as an operator meets them, and the audit of a load."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from piwarden.audit.models import AuditEvent
from piwarden.rights.actions import load_schedule
from piwarden.rights.models import ScheduleDay, ScheduleYear
from tests.commands import piwarden

pytestmark = pytest.mark.django_db

HOLIDAYS_2027 = (
    "2027-01-01..2027-01-03,2027-02-06..2027-02-12,2027-04-03..2027-04-05,2027-05-01..2027-05-05,"
    "2027-06-09..2027-06-11,2027-09-15..2027-09-17,2027-10-01..2027-10-07"
)
WORKDAYS_2027 = "2027-01-31,2027-02-20,2027-04-25,2027-09-26,2027-10-09"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("rights", *args, stdout=out)
    return out.getvalue()


def load_2027(by: str = "alice", holidays: str = HOLIDAYS_2027, workdays: str = WORKDAYS_2027) -> str:
    return run("load-schedule", "2027", "--holidays", holidays, "--workdays", workdays, "--by", by)


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as raised:
        run(*args)
    assert raised.value.returncode == 2  # bad input, as argparse's usage errors
    return str(raised.value)


@pytest.mark.duty("RGT-09")
def test_due_date_prints_the_date_in_iso_format():
    output = run("due-date", "2026-02-06")
    assert "due 2026-03-05 (Thursday)" in output
    assert "rovisional" not in output


@pytest.mark.duty("RGT-09")
def test_a_due_date_in_a_year_not_loaded_says_provisional_why_and_how_to_load_it(alice):
    output = run("due-date", "2026-12-21")
    assert "due 2027-01-11 (Monday)" in output
    assert "Provisional: the working-day schedule of 2027 is not loaded" in output
    assert "piwarden rights load-schedule 2027 --holidays" in output

    load_2027()
    output = run("due-date", "2026-12-21")
    assert "due 2027-01-12 (Tuesday)" in output
    assert "rovisional" not in output


@pytest.mark.parametrize("received", ["2026-13-01", "20261221", "21/12/2026", "", "2026-02-30", "0001-01-01"])
def test_due_date_refuses_what_is_not_a_plausible_iso_date(received):
    message = refused("due-date", received)
    assert received in message or "not a date" in message


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_2_from_the_shell_with_one_line():
    result = piwarden("rights", "due-date", "2026-12-32", LANG="en_US.UTF-8")
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "CommandError: '2026-12-32' is not a date in ISO format (YYYY-MM-DD, e.g. 2027-02-06)."
    )


def test_loading_a_year_stores_it_says_what_it_loaded_and_audits_it(alice):
    output = load_2027()
    assert (
        "Loaded the working-day schedule of 2027: 31 days off (2027-01-01..2027-01-03, 2027-02-06..2027-02-12,"
        in output
    )
    assert "5 make-up workdays (2027-01-31, 2027-02-20," in output
    schedule = ScheduleYear.objects.get(year=2027)
    assert schedule.loaded_by == alice
    assert schedule.days.filter(kind="holiday").count() == 31
    assert schedule.days.filter(kind="workday").count() == 5

    event = AuditEvent.objects.get(event_type="rights.schedule_loaded")
    assert event.actor == alice
    assert event.extra["year"] == 2027
    assert event.extra["workdays"] == ["2027-01-31", "2027-02-20", "2027-04-25", "2027-09-26", "2027-10-09"]
    assert len(event.extra["holidays"]) == 31
    assert event.extra["replaced"] is None


def test_reloading_a_year_replaces_it_and_audits_what_it_replaced(alice, bob):
    load_2027(by="alice")
    output = load_2027(by="bob", workdays="2027-01-31")
    assert "It replaces the schedule alice loaded on" in output
    assert "(31 days off, 5 make-up workdays)" in output
    assert list(ScheduleDay.objects.filter(kind="workday").values_list("date", flat=True)) == [date(2027, 1, 31)]
    assert ScheduleYear.objects.get(year=2027).loaded_by == bob
    first, second = AuditEvent.objects.filter(event_type="rights.schedule_loaded").order_by("seq")
    assert first.actor == alice
    assert second.actor == bob
    assert second.extra["replaced"] | {"loaded_at": None} == {
        "loaded_at": None,
        "loaded_by": alice.pk,
        "holidays": 31,
        "workdays": 5,
    }


def test_loading_a_library_year_says_it_takes_the_library_s_place(alice):
    output = run(
        "load-schedule", "2026", "--holidays", "2026-01-01..2026-01-03,2026-03-09..2026-03-18", "--by", "alice"
    )
    assert "It takes the place of the chinese-calendar library's data for 2026." in output
    assert "Note: no make-up workdays given" in output


@pytest.mark.parametrize(
    ("holidays", "workdays", "expected"),
    [
        (HOLIDAYS_2027 + ",2028-01-01", "", "2028-01-01 is not in 2027"),
        (HOLIDAYS_2027, "2027-02-06", "2027-02-06 given both as a day off and as a make-up workday"),
        (HOLIDAYS_2027, "2027-02-15", "2027-02-15 is a Monday: a make-up workday (调休) is a Saturday or Sunday"),
        (HOLIDAYS_2027.replace("2027-01-01..", "2027-01-02.."), "", "2027-01-01 is not among the days off"),
        ("2027-01-01,2027-02-06,2027-02-12", "", "Only 3 days off given"),
        ("2027-01-01,2027-02-12..2027-02-06", "", "the range 2027-02-12..2027-02-06 ends before it starts"),
        ("2027-01-01..2027-12-31", "", "the range 2027-01-01..2027-12-31 is 365 days long"),
        ("2027-1-1", "", "'2027-1-1' is not a date in ISO format"),
        ("2027-01-01..", "", "'' is not a date in ISO format"),
    ],
)
def test_load_schedule_refuses_what_an_operator_can_get_wrong_and_loads_nothing(alice, holidays, workdays, expected):
    message = refused("load-schedule", "2027", "--holidays", holidays, "--workdays", workdays, "--by", "alice")
    assert expected in message
    assert not ScheduleYear.objects.exists()
    assert not AuditEvent.objects.filter(event_type="rights.schedule_loaded").exists()


def test_load_schedule_needs_an_active_staff_account(alice):
    alice.is_active = False
    alice.save()
    for by in ("alice", "nobody"):
        assert f"No active staff account is named {by!r}" in refused(
            "load-schedule", "2027", "--holidays", HOLIDAYS_2027, "--by", by
        )
    assert not ScheduleYear.objects.exists()


def test_load_schedule_refuses_an_implausible_year(alice):
    assert "1999 is not a year this clock can hold" in refused(
        "load-schedule", "1999", "--holidays", "1999-01-01..1999-01-13", "--by", "alice"
    )


def test_load_schedule_is_an_entry_point_that_refuses_to_run_inside_another_transaction(alice):
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        load_schedule(year=2027, holidays=[date(2027, 1, 1)], workdays=[], by=alice)


def test_schedules_lists_where_each_year_comes_from(alice):
    assert run("schedules").splitlines() == [
        "2004-2026: the chinese-calendar library's data",
        "Any other year: not loaded; due dates that run into it are provisional.",
    ]
    load_2027()
    run("load-schedule", "2026", "--holidays", "2026-01-01..2026-01-03,2026-03-09..2026-03-18", "--by", "alice")
    lines = run("schedules").splitlines()
    assert lines[0] == "2004-2026: the chinese-calendar library's data (loaded instead: 2026)"
    assert lines[1].startswith("2026: loaded on ")
    assert lines[1].endswith(" by alice (13 days off, 0 make-up workdays)")
    assert lines[2].endswith(" by alice (31 days off, 5 make-up workdays)")
