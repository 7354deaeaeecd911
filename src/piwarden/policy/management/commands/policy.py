"""piwarden policy check | show"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from piwarden.policy.declaration import DeclarationError, load_declaration
from piwarden.policy.inventory import inspect_inventory


class Command(BaseCommand):
    help = (
        "Check the privacy-policy declaration against the code: fails when a model field that "
        "stores data is not declared (as personal, in a category, or as non_personal), when a "
        "declared field is stored nowhere, or when a field of an encrypted category is not encrypted."
    )

    requires_system_checks: list[str] = []  # this command *is* the check; report, don't pre-empt

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["check"])

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            declaration = load_declaration()
        except DeclarationError as exc:
            raise CommandError(str(exc)) from None
        report = inspect_inventory(declaration)
        if report.problems:
            for problem in report.problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(report.problems)} problem(s) between policy/declaration.toml and the models")
        personal = sum(len(c.fields) for c in declaration.categories)
        self.stdout.write(
            f"policy {declaration.version}: {personal} personal fields in {len(declaration.categories)} categories, "
            f"{len(declaration.non_personal.fields)} non-personal fields; every stored field is declared."
        )
