"""piwarden rights due-date YYYY-MM-DD | schedules | load-schedule YEAR --holidays … [--workdays …] --by USERNAME"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Q

from piwarden.periodic import repeat
from piwarden.rights.actions import FIRST_YEAR, LAST_YEAR, Reminders, ScheduleError, load_schedule, remind_and_escalate
from piwarden.rights.clock import LIBRARY_YEARS, RESPONSE_WORKING_DAYS, DueDate, due_date
from piwarden.rights.models import DayKind, ScheduleYear

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LONGEST_RANGE = 31  # no period in a notice is longer; a longer range is a typo in a year or month


def bad_input(message: str) -> CommandError:
    """The operator's input cannot be used: exit status 2, as for a usage error."""
    return CommandError(message, returncode=2)


def parse_date(text: str) -> date:
    text = text.strip()
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise bad_input(f"{text!r} is not a date in ISO format (YYYY-MM-DD, e.g. 2027-02-06).")


def parse_days(text: str, option: str) -> list[date]:
    """Dates and inclusive ranges separated by commas: ``2027-01-01,2027-02-06..2027-02-12``."""
    days: list[date] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        first_text, dots, last_text = item.partition("..")
        first = parse_date(first_text)
        last = parse_date(last_text) if dots else first
        if last < first:
            raise bad_input(f"{option}: the range {item} ends before it starts (write FIRST..LAST).")
        if (last - first).days >= _LONGEST_RANGE:
            raise bad_input(
                f"{option}: the range {item} is {(last - first).days + 1} days long; no period in a notice "
                f"is longer than {_LONGEST_RANGE} days: check its year and month."
            )
        days += [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return days


def describe(day: date) -> str:
    return f"{day.isoformat()} ({_WEEKDAYS[day.weekday()]})"


def periods(days: tuple[date, ...]) -> str:
    """Consecutive dates shown as ranges, as the operator typed them from the notice."""
    runs: list[list[date]] = []
    for day in days:
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(r[0].isoformat() if len(r) == 1 else f"{r[0].isoformat()}..{r[-1].isoformat()}" for r in runs)


class Command(BaseCommand):
    help = (
        "The PRC working-day clock of the rights requests (policy §六: an answer within 15 working days). "
        "due-date: when the answer to a request received on a date is due.  schedules: which years it knows.  "
        "load-schedule: put a year's days off and make-up workdays from the State Council's notice in place "
        "(audited; replaces what the clock knew of that year)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{due-date,schedules,load-schedule,remind}"
        )
        due = actions.add_parser("due-date", help="the due date of an answer to a request received on DATE")
        due.add_argument("received", metavar="DATE", help="the day of receipt, YYYY-MM-DD")
        actions.add_parser("schedules", help="which years the clock knows, and where each year's schedule comes from")
        load = actions.add_parser(
            "load-schedule", help="load a year's schedule from the State Council's notice (replaces it if loaded)"
        )
        load.add_argument("year", type=int, metavar="YEAR")
        load.add_argument(
            "--holidays",
            required=True,
            help=(
                "every day off (放假) in the notice: dates and inclusive ranges, e.g. 2027-01-01,2027-02-06..2027-02-12"
            ),
        )
        load.add_argument(
            "--workdays", default="", help="the make-up workdays (调休上班), Saturdays or Sundays, e.g. 2027-02-20"
        )
        load.add_argument("--by", required=True, metavar="USERNAME", help="your staff account: who loaded it")
        remind = actions.add_parser(
            "remind",
            help="remind at working day 10 and escalate overdue requests (each once); `piwarden serve` runs it hourly",
        )
        remind.add_argument("--today", metavar="DATE", help="count as if today were DATE (YYYY-MM-DD, PRC day)")
        remind.add_argument("--every", type=int, metavar="SECONDS", help="run now and then every SECONDS until stopped")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "due-date":
            received = parse_date(options["received"])
            if not FIRST_YEAR <= received.year <= LAST_YEAR:
                raise bad_input(
                    f"{received.isoformat()} is not a day of receipt this clock counts from "
                    f"({FIRST_YEAR} to {LAST_YEAR})."
                )
            self.due_date(received)
        elif options["action"] == "schedules":
            self.schedules()
        elif options["action"] == "remind":
            self.remind(options)
        else:
            self.load_schedule(options)

    def due_date(self, received: date) -> None:
        due: DueDate = due_date(received)
        self.stdout.write(
            f"Received {describe(received)}: due {describe(due.date)}, the {RESPONSE_WORKING_DAYS}th PRC "
            "working day after the day of receipt."
        )
        if due.provisional:
            years = ", ".join(map(str, due.unknown_years))
            self.stdout.write(
                f"Provisional: the working-day schedule of {years} is not loaded, so only weekends counted as days "
                "off there (the final date is usually later).\n"
                "Load each year from the State Council's notice (see docs/operations.md):\n"
                f"  piwarden rights load-schedule {due.unknown_years[0]} --holidays FIRST..LAST,... "
                "--workdays DATE,... --by USERNAME"
            )

    def schedules(self) -> None:
        # By year, said here: Django leaves Meta.ordering out of a query that aggregates.
        loaded = (
            ScheduleYear.objects.select_related("loaded_by")
            .annotate(
                holidays=Count("days", filter=Q(days__kind=DayKind.HOLIDAY)),
                workdays=Count("days", filter=Q(days__kind=DayKind.WORKDAY)),
            )
            .order_by("year")
        )
        replaced = sorted(str(s.year) for s in loaded if s.year in LIBRARY_YEARS)
        self.stdout.write(
            f"{LIBRARY_YEARS[0]}-{LIBRARY_YEARS[-1]}: the chinese-calendar library's data"
            + (f" (loaded instead: {', '.join(replaced)})" if replaced else "")
        )
        for schedule in loaded:
            self.stdout.write(
                f"{schedule.year}: loaded on {schedule.loaded_at:%Y-%m-%d} by {schedule.loaded_by.get_username()} "
                f"({schedule.holidays} days off, {schedule.workdays} make-up workdays)"
            )
        self.stdout.write("Any other year: not loaded; due dates that run into it are provisional.")

    def load_schedule(self, options: dict[str, Any]) -> None:
        holidays = parse_days(options["holidays"], "--holidays")
        workdays = parse_days(options["workdays"], "--workdays")
        by = User.objects.filter(username=options["by"], is_staff=True, is_active=True).first()
        if by is None:
            raise bad_input(f"No active staff account is named {options['by']!r} (piwarden createstaff makes one).")
        try:
            loaded = load_schedule(year=options["year"], holidays=holidays, workdays=workdays, by=by)
        except ScheduleError as exc:
            raise bad_input(f"Nothing was loaded: {exc}") from None
        self.stdout.write(
            f"Loaded the working-day schedule of {loaded.year}: {len(loaded.holidays)} days off "
            f"({periods(loaded.holidays)}) and {len(loaded.workdays)} make-up workdays "
            f"({periods(loaded.workdays) or 'none'})."
        )
        if not loaded.workdays:
            self.stdout.write("Note: no make-up workdays given; most notices list some (调休上班): check yours.")
        if loaded.replaced is not None:
            self.stdout.write(
                f"It replaces the schedule {loaded.replaced.loaded_by} loaded on "
                f"{loaded.replaced.loaded_at:%Y-%m-%d} ({loaded.replaced.holidays} days off, "
                f"{loaded.replaced.workdays} make-up workdays)."
            )
        elif loaded.year in LIBRARY_YEARS:
            self.stdout.write(f"It takes the place of the chinese-calendar library's data for {loaded.year}.")

    def remind(self, options: dict[str, Any]) -> None:
        today = parse_date(options["today"]) if options["today"] else None

        def report(done: Reminders) -> str:
            return (
                f"Reminded {len(done.reminded)} ({', '.join(done.reminded) or 'none'}); "
                f"escalated {len(done.escalated)} ({', '.join(done.escalated) or 'none'})."
            )

        repeat(
            "rights remind",
            options["every"],
            lambda: remind_and_escalate(today),
            report,
            lambda done: bool(done.reminded or done.escalated),
            stdout=self.stdout,
            stderr=self.stderr,
        )
