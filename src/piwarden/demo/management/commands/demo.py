"""piwarden demo --persons N [--activity M]: fill a demo or benchmark database with synthetic people.

Refused unless ``PIWARDEN_DEMO=on``: the people are invented, but the rows are real (data keys,
audit events, staff accounts), and nothing tells them apart from real ones afterwards.
"""

from __future__ import annotations

import os
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from piwarden.demo.fill import FIRST_ROWS, PERSON_TABLES, Plan, ProgressBar, fill, person_values
from piwarden.people.models import Person
from piwarden.vault import blind

DEFAULT_PERSONS = 100
DEFAULT_ACTIVITY_PER_PERSON = 10


class Command(BaseCommand):
    help = (
        "Fill this database with synthetic people and their activity (consultation requests, consents, "
        "audit events, rights requests), encrypted as the site encrypts. Only with PIWARDEN_DEMO=on: "
        "never on a production database."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--persons", type=int, default=DEFAULT_PERSONS, help="people to add (default 100)")
        parser.add_argument(
            "--activity",
            type=int,
            help=f"activity rows in all (default {DEFAULT_ACTIVITY_PER_PERSON} per person; "
            f"at least {FIRST_ROWS} per person: each has one consultation)",
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="another seed adds other people (the e-mail addresses name it)"
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=os.cpu_count() or 1,
            help="processes preparing the rows (default: one per core; 0: this process alone)",
        )
        parser.add_argument("--batch", type=int, default=500, help="people per transaction (default 500)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.PIWARDEN_DEMO:
            raise CommandError(
                f"piwarden demo adds invented people to the database {connection.settings_dict['NAME']}, and nothing "
                "tells them from real ones afterwards: it runs only on a demo or benchmark database. "
                "Set PIWARDEN_DEMO=on for such a database (never for production)."
            )
        persons, seed = options["persons"], options["seed"]
        activity = options["activity"] if options["activity"] is not None else DEFAULT_ACTIVITY_PER_PERSON * persons
        if persons < 1:
            raise CommandError("--persons must be at least 1.")
        if activity < FIRST_ROWS * persons:
            raise CommandError(
                f"--activity must be at least {FIRST_ROWS} per person ({FIRST_ROWS * persons}): "
                "each person has one consultation request, its consent and three audit events."
            )
        if options["workers"] < 0 or options["batch"] < 1:
            raise CommandError("--workers must be 0 or more and --batch at least 1.")
        if Person.objects.filter(email_index=blind.email_index(person_values(seed, 0)["email"])).exists():
            raise CommandError(f"The people of seed {seed} are in this database already: choose another --seed.")
        plan = Plan(persons=persons, activity=activity, seed=seed)
        bar = ProgressBar(persons, "people", out=self.stderr._out)
        filled = fill(plan, workers=options["workers"], batch_size=options["batch"], report=bar)
        tables = ", ".join(f"{table} {n:,}" for table, n in sorted(filled.counts.items()) if table not in PERSON_TABLES)
        self.stdout.write(
            f"Added {persons:,} people and {filled.activity:,} activity rows in {filled.seconds:,.1f} s "
            f"(seed {seed}; {connection.vendor}): {tables}."
        )
