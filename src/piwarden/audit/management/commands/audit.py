"""piwarden audit seal | verify"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from piwarden.audit.chain import checkpoint, count_events, seal, verify


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
        "seal: chain the events that requests appended since the last seal (the worker of `piwarden "
        "serve` does so every second). verify: check every event, sealed or not, and name the first "
        "that was rewritten, deleted or moved; exits with status 1 on a break, 0 when the log is intact."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["seal", "verify"])
        parser.add_argument("--quiet", action="store_true", help="no progress bar (there is none off a terminal)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "seal":
            sealed = seal()
            taken = checkpoint(most=None)
            self.stdout.write(f"audit: {sealed} event(s) sealed; {taken} checkpoint(s) taken")
            return
        shown = not options["quiet"] and sys.stderr.isatty()
        total = count_events()
        progress = Progress(total, sys.stderr, shown=shown)
        broken = verify(progress)
        progress.end()
        if broken is not None:
            raise CommandError(f"{broken}: the audit log was tampered with")
        elapsed = time.perf_counter() - progress.started
        self.stdout.write(f"audit: {progress.done} event(s) verified in {elapsed:.2f} s; the log is intact")
