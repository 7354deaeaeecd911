"""piwarden audit seal | verify | export | rotate-signing-key | check-export FILE | restore-triggers | monitor"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from piwarden.audit import appendonly, proof, signing
from piwarden.audit.actions import export_missing, restore_triggers, rotate_signing_key
from piwarden.audit.chain import ExportUnreadable, checkpoint, count_events, seal, verify, verify_exported
from piwarden.monitoring.actions import Run as MonitorRun
from piwarden.monitoring.actions import run_monitor
from piwarden.periodic import repeat
from piwarden.vault.keys import VaultUnavailable


class Progress:
    """A one-line progress bar on a terminal (stderr); silent elsewhere."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO, *, shown: bool) -> None:
        self.total, self.stream, self.shown = max(total, 1), stream, shown
        self.done = 0
        self.started = time.perf_counter()

    def __call__(self, count: int) -> None:
        self.done += count
        if not self.shown:
            return
        share = min(self.done / self.total, 1.0)
        filled = int(share * self.WIDTH)
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {share:4.0%} {self.done:,}/{self.total:,} events, {rate:,.0f}/s")
        self.stream.flush()

    def end(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


class Command(BaseCommand):
    help = (
        "seal: chain the events that requests appended since the last seal, and take the signed "
        "checkpoints that are due (the worker of `piwarden serve` does so every second). verify: "
        "check every event, sealed or not, and every checkpoint, then the log against the export "
        "file of signed checkpoints; name the first event that was rewritten, deleted, moved or cut "
        "off; exit with status 1 on a break, 0 when the log is intact; it also checks the database "
        "triggers that keep the log append-only, and exits with status 2 when the log is intact but "
        "they are missing, disabled or altered. restore-triggers: put them back. export: write to "
        "the export file the checkpoints it lacks. rotate-signing-key: add a new checkpoint signing key (the "
        "old ones still verify). check-export FILE: check a part of the log exported from the back "
        "office against its proof and the public key, without the database. monitor: run the monitoring "
        "rules over the events sealed since the last run and raise (and e-mail) their alerts; `piwarden serve` "
        "runs it every PIWARDEN_ALERT_EVERY seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action",
            choices=["seal", "verify", "export", "rotate-signing-key", "check-export", "restore-triggers", "monitor"],
        )
        parser.add_argument("file", nargs="?", type=Path, help="check-export: the file exported from the back office")
        parser.add_argument(
            "--every", type=int, metavar="SECONDS", help="monitor: run now and then every SECONDS until stopped"
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar (there is none off a terminal)")
        parser.add_argument(
            "--checkpoints",
            type=Path,
            help="the export file of signed checkpoints (default: PIWARDEN_AUDIT_CHECKPOINTS)",
        )
        parser.add_argument(
            "--public-key",
            type=Path,
            help="verify: the public keyset to check signatures with (default: the keys directory's)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        exported: Path = options["checkpoints"] or settings.PIWARDEN_AUDIT_CHECKPOINTS
        try:
            if action == "seal":
                sealed = seal()
                taken = checkpoint(most=None)
                self.stdout.write(f"audit: {sealed} event(s) sealed; {taken} checkpoint(s) taken")
            elif action == "export":
                self.stdout.write(f"audit: {export_missing(exported)} checkpoint(s) written to {exported}")
            elif action == "check-export":
                self._check_export(options["file"], options["public_key"])
            elif action == "restore-triggers":
                restored = restore_triggers()
                self.stdout.write(
                    f"audit: the append-only triggers are in place (put back: {', '.join(restored) or 'none'})"
                )
            elif action == "monitor":
                self._monitor(options["every"])
            elif action == "rotate-signing-key":
                self.stdout.write(f"audit: checkpoints are now signed with key {rotate_signing_key()}")
            else:
                self._verify(exported, options["public_key"], quiet=options["quiet"])
        except VaultUnavailable as exc:
            raise CommandError(f"{exc}; nothing was done") from None

    def _monitor(self, every: int | None) -> None:
        def report(run: MonitorRun) -> str:
            alerts = ", ".join(map(str, run.alerts)) or "none"
            return f"audit monitor: {run.examined} event(s) examined; alerts raised: {alerts}"

        repeat(
            "audit monitor",
            every,
            run_monitor,
            report,
            lambda run: bool(run.alerts),
            stdout=self.stdout,
            stderr=self.stderr,
        )

    def _check_export(self, file: Path | None, public: Path | None) -> None:
        if file is None:
            raise CommandError("check-export needs the exported file: piwarden audit check-export FILE")
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"{file} cannot be read as an export: {exc}") from None
        problems = proof.check(document, signing.Verifier(public))
        if problems:
            raise CommandError(f"{file} does not hold: " + "; ".join(problems))
        events = document.get("events", [])
        proven = sum(1 for e in events if e.get("proven"))
        self.stdout.write(
            f"audit: {file} holds: {proven} of {len(events)} event(s) proven by "
            f"{len(document.get('proofs', []))} signed checkpoint(s); the others were not checkpointed yet"
        )

    def _verify(self, exported: Path, public: Path | None, *, quiet: bool) -> None:
        unguarded = appendonly.missing(connection)
        shown = not quiet and sys.stderr.isatty()
        total = count_events()
        progress = Progress(total, sys.stderr, shown=shown)
        broken = verify(progress, public=public)
        progress.end()
        if broken is None and exported.exists():
            try:
                broken = verify_exported(exported, public)
            except (ExportUnreadable, OSError) as exc:
                raise CommandError(f"{exc}: the export file cannot be checked") from None
        if broken is not None:
            also = f"; and {_unguarded(unguarded)}" if unguarded else ""
            raise CommandError(f"{broken}: the audit log was tampered with{also}")
        elapsed = time.perf_counter() - progress.started
        self.stdout.write(f"audit: {progress.done} event(s) verified in {elapsed:.2f} s; the log is intact")
        if exported.exists():
            self.stdout.write(f"audit: it holds every run checkpointed in {exported}")
        else:
            self.stdout.write(
                f"audit: no export file at {exported}: a log cut short or rewritten with its hashes and "
                "checkpoints recomputed would not show (give --checkpoints FILE)"
            )
        if unguarded:
            # Not a break of the log, but only someone who can alter the schema removes them: a
            # status of its own, so that the cron job running verify raises the alarm.
            raise CommandError(f"the log verifies, but {_unguarded(unguarded)}", returncode=2)


def _unguarded(names: list[str]) -> str:
    return (
        f"its append-only triggers are missing, disabled or altered ({', '.join(names)}): someone who can "
        "alter the schema removed them, and UPDATE or DELETE of audit rows is no longer refused "
        "(`piwarden audit restore-triggers` puts them back)"
    )
