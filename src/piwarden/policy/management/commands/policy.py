"""piwarden policy check | trace | publish"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core import checks
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from piwarden.policy.declaration import DeclarationError, load_declaration
from piwarden.policy.inventory import inspect_inventory
from piwarden.policy.promises import LANGUAGES, PromiseError, promise_problems
from piwarden.policy.trace import as_json, as_markdown, default_report_path, read_report, trace
from piwarden.policy.versions import publish_arguments


class Command(BaseCommand):
    help = (
        "Check the privacy-policy declaration against the code: fails when a field of any installed "
        "app's models (piwarden's, Django's and the libraries') or a file store an app writes is not "
        "declared (as personal, in a category, or as non_personal with a reason), when a declared "
        "field or store exists nowhere, when something in an encrypted category is not encrypted, or "
        "when a rule another app adds fails (system checks tagged 'policy': a declared category without "
        "an exporter or an eraser, piwarden.people.checks), or when the privacy texts' promise marks are "
        "wrong, differ between the languages or disagree with policy/promises.toml.  trace: each promise "
        "of the privacy texts → its legal duties → the code and tests policy/promises.toml names → the "
        "last test run's results (make test keeps them); --strict fails when any promise is unkept.  "
        "publish: keep the declaration and texts in force as the next policy version, compared with the one "
        "before and classified by the material kinds of §十; a material change needs its notice in both "
        "languages, is announced on every page and e-mailed once to everyone whose contact details are held."
    )

    requires_system_checks: list[str] = []  # this command *is* the check; report, don't pre-empt

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["check", "trace", "publish"])
        parser.add_argument("--json", action="store_true", help="trace: JSON instead of Markdown")
        parser.add_argument("--strict", action="store_true", help="trace: exit 1 when any promise is unkept")
        parser.add_argument("--language", choices=LANGUAGES, default="zh-hans", help="trace: the text to trace")
        parser.add_argument("--report", type=Path, default=None, help="trace: the duty report (JSON) to read")
        publish_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "trace":
            self.trace(options)
            return
        if options["action"] == "publish":
            # Publishing writes the audit log and queues the notices: piwarden.revisions does it
            # (this app knows the declaration alone).
            names = ("effective", "notice_zh", "notice_en", "kind", "explicit_consent_will_be_sought")
            call_command(
                "revisions", "publish", stdout=self.stdout, stderr=self.stderr, **{n: options[n] for n in names}
            )
            return
        try:
            declaration = load_declaration()
        except DeclarationError as exc:
            raise CommandError(str(exc)) from None
        report = inspect_inventory(declaration)
        problems = report.problems + [m.msg for m in checks.run_checks(tags=["policy"]) if m.is_serious()]
        problems += promise_problems()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(problems)} problem(s) between policy/declaration.toml and the code")
        for label, reason in sorted(report.exempt.items()):
            self.stdout.write(f"not inventoried: app {label!r}: {reason}")
        fields = sum(len(c.fields) for c in declaration.categories)
        files = sum(len(c.files) for c in declaration.categories)
        self.stdout.write(
            f"policy {declaration.version}: {fields} personal fields and {files} file store(s) in "
            f"{len(declaration.categories)} categories, {len(declaration.non_personal_fields)} non-personal fields "
            f"and {len(declaration.non_personal_files)} file store(s); every stored field and file store is declared, "
            "every category has an exporter and an eraser, and the privacy texts' promises are marked alike in "
            "both languages, each with the code policy/promises.toml names for it."
        )

    def trace(self, options: dict[str, Any]) -> None:
        if problems := promise_problems():  # a trace of marks that disagree would mislead
            raise CommandError("\n".join(problems))
        with translation.override(options["language"]):
            try:
                report = read_report(options["report"] or default_report_path())
                found = trace(options["language"], report)
            except PromiseError as exc:
                raise CommandError(str(exc)) from None
            text = json.dumps(as_json(found), ensure_ascii=False, indent=2) if options["json"] else as_markdown(found)
        self.stdout.write(text)
        if options["strict"] and found.unkept:
            raise CommandError(
                f"{len(found.unkept)} promise(s) unkept: {', '.join(t.promise.id for t in found.unkept)}"
            )
