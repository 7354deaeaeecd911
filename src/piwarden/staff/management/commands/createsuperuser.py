"""piwarden createsuperuser: refused; staff accounts are made by createstaff."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Refused: piwarden has no superuser. Staff accounts are made with `piwarden createstaff NAME "
        "--role ROLE`, which gives the account a role and an authenticator and records it in the audit log."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        # Django's own options are accepted, so that a script calling them hears why, not a usage error.
        parser.add_argument("args", nargs="*")
        parser.add_argument("--username")
        parser.add_argument("--email")
        parser.add_argument("--noinput", "--no-input", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        raise CommandError(
            "piwarden has no superuser: create staff accounts with `piwarden createstaff NAME --role ROLE` "
            "(a role, an authenticator, and a record in the audit log)."
        )
