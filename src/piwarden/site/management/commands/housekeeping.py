"""piwarden housekeeping [--once | --every SECONDS]: delete data past its declared retention.

``piwarden serve`` runs it as one of its children (every hour); run it from cron with ``--once``
when the site is served otherwise.  The rules are in ``piwarden.site.housekeeping``.
"""

from __future__ import annotations

import logging
import signal
import textwrap
import threading
import time
from argparse import ArgumentTypeError, RawDescriptionHelpFormatter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter
from django.db import DatabaseError

from piwarden.cessation.rounds import RoundResult, periodic_round
from piwarden.errors import describe
from piwarden.people.ledger import LedgerUnavailable
from piwarden.retention.sweep import ClockAhead, Report, run_retention
from piwarden.site.housekeeping import EXPIRIES, JOBS, Sweep, rules
from piwarden.site.management.commands.worker import drop_connections
from piwarden.staff.actions import expire_grants

DEFAULT_EVERY = 3600
logger = logging.getLogger("piwarden.housekeeping")


def seconds(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ArgumentTypeError(f"a whole number of seconds, at least 1 (not {value!r})")
    return number


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    """Django's option order, and the description as written: one rule per line."""


class Command(BaseCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built from the declaration, so that the help states the retention really enforced.
        rule_lines = [textwrap.fill(rule, 88, initial_indent="  - ", subsequent_indent="    ") for rule in rules()]
        self.help = "\n".join(
            [
                textwrap.fill(
                    "Delete what policy/declaration.toml keeps no longer, once (--once) or now and every "
                    f"SECONDS (--every, default {DEFAULT_EVERY}; `piwarden serve` runs it so). "
                    "The rules, each with the category it serves and its declared retention:",
                    88,
                ),
                *rule_lines,
                textwrap.fill(
                    "While the site's cessation is announced, each run also sends the notices not sent yet; "
                    "from its date, it carries the cessation out (piwarden cessation). "
                    "A run that deletes something records one retention.swept audit event with the counts "
                    "per category. A job that fails is reported and the others still run (--once then "
                    "exits with status 1); a database outage makes the run delete nothing.",
                    88,
                ),
            ]
        )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = HelpFormatter
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--once", action="store_true", help="run every job once and exit")
        when.add_argument(
            "--every",
            type=seconds,
            default=DEFAULT_EVERY,
            metavar="SECONDS",
            help=f"run every job now and then every SECONDS until stopped (default {DEFAULT_EVERY})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            result = self._run(quiet=False)
            if result is None or result.failed:
                raise CommandError("housekeeping: not every job ran; see the lines above")
            return
        stopping = threading.Event()

        def stop(signum: int, frame: Any) -> None:
            stopping.set()  # a run in progress finishes (and commits) first

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping.is_set():
            self._run(quiet=True)
            # Between runs hold no connection: a database restarted meanwhile is met fresh.
            drop_connections()
            stopping.wait(options["every"])

    def _run(self, *, quiet: bool) -> Sweep | None:
        """One sweep, told per job; None when the database could not be reached."""
        try:
            result, report = run_retention()
        except ClockAhead as exc:
            self._say(str(exc), error=True)
            return None
        except LedgerUnavailable as exc:
            # The jobs committed; a batch that erases people needs the ledger: it rolled back whole.
            self._say(f"retention sweep stopped: {describe(exc)}; the next run finishes it", error=True)
            return None
        except DatabaseError as exc:
            self._say(f"database unavailable ({describe(exc)}); nothing deleted", error=True)
            drop_connections()
            return None
        try:
            lapsed = expire_grants()
            cessation = self._cessation()
        except DatabaseError as exc:
            self._say(f"database unavailable ({describe(exc)}); grants and the cessation not checked", error=True)
            drop_connections()
            return None
        for name, kind in [(e.name, e.category or "not personal") for e in EXPIRIES] + [(j.name, "") for j in JOBS]:
            if name in result.failed:
                self._say(f"{name}: failed ({result.failed[name]}); nothing of it deleted", error=True)
            elif result.deleted[name] or not quiet:
                self._say(f"{name} ({kind or result.categories[name]}): {result.deleted[name]} deleted")
        self._swept(report, quiet=quiet)
        if lapsed or not quiet:
            self._say(f"access grants past their end: {lapsed} marked expired")
        if cessation is not None and (cessation.notable() or not quiet):
            self._say(cessation.describe())
        return result

    def _swept(self, report: Report, *, quiet: bool) -> None:
        """The retention sweep's rules, one line each, then the audit log's cut (piwarden.retention.cut)."""
        for outcome in report.outcomes:
            if outcome.rows or outcome.held_rows or not quiet:
                held = f"; {outcome.held_rows} past their retention kept by legal holds" if outcome.held_rows else ""
                self._say(f"{outcome.category} ({outcome.model}): {outcome.rows} {outcome.action}{held}")
        cut = report.cut
        if cut is None:
            return
        if cut.deleted or cut.made or not quiet:
            where = f", cut at seq {cut.cut_seq}" if cut.cut_seq else ""
            self._say(f"access_records, access_reasons (audit.AuditEvent{where}): {cut.deleted} deleted")
        if cut.refused:
            self._say(f"the audit log was not cut: {cut.refused} (run `piwarden audit verify`)", error=True)

    def _cessation(self) -> RoundResult | None:
        """The cessation's round; a failure of its own (the erasure ledger unavailable, a mail server
        down) is told and tried again next run, and the other jobs' results still count."""
        try:
            return periodic_round()
        except DatabaseError:
            raise
        except Exception as exc:  # told in one line and logged; the next run tries again
            logger.error("cessation round failed: %s", describe(exc), exc_info=True)
            self._say(f"cessation: failed ({describe(exc)}); tried again next run", error=True)
            return None

    def _say(self, message: str, *, error: bool = False) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} piwarden housekeeping: {message}"
        stream = self.stderr if error else self.stdout
        stream.write(line)
        stream.flush()
