"""piwarden serve: the production server, its task worker and the retention housekeeping, in one
command, supervised.

A child that dies (gunicorn's master, the task worker, the housekeeping) is logged and started
again after a back-off (1, 2, 4 … 30 seconds; back to 1 once a child has run for a minute), so a
database outage or a ``kill -9`` never stops the site.  Ctrl-C or SIGTERM stops everything.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from piwarden.environment import envint, envstr, persistent_secret, served_url
from piwarden.people import ledger
from piwarden.revisions.actions import ensure_published

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 60.0  # a child that ran this long before dying starts again after BACKOFF_FIRST
POLL_SECONDS = 0.2
DEFAULT_DATA_DIR = Path("var").resolve()


@dataclass
class Child:
    """One supervised process: its command line, the running process, and its back-off."""

    name: str
    argv: list[str]
    env: dict[str, str]
    serve_id: str = ""
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    start_at: float = 0.0  # time.monotonic() at which to (re)start it
    backoff: float = BACKOFF_FIRST
    incarnation: int = 0
    dead_ids: list[str] = field(default_factory=list)  # worker ids of dead incarnations

    def start(self) -> None:
        self.incarnation += 1
        # Its own process group, so that when it dies its orphans (gunicorn's workers) can be
        # ended with it; Ctrl-C reaches it through the SIGTERM this command forwards.
        self.process = subprocess.Popen(self.command(), env=self.env, process_group=0)  # noqa: S603  # our argv
        self.started_at = time.monotonic()

    def command(self) -> list[str]:
        if self.name != "worker":
            return self.argv
        recover = [arg for dead in self.dead_ids[-10:] for arg in ("--recover-from", dead)]
        return [*self.argv, "--worker-id", self.worker_id(), *recover]

    def worker_id(self) -> str:
        return f"{self.serve_id}-{self.incarnation}"


def tighten(data_dir: Path) -> list[str]:
    """Owner-only modes for everything under the data directory, made by any earlier version too.

    Returns the paths whose mode could not be changed (owned by someone else).
    """
    paths = [data_dir]
    for root, dirs, files in os.walk(data_dir):
        paths += [Path(root) / name for name in (*dirs, *files)]
    failed = []
    for path in paths:
        if path.is_symlink():
            continue
        try:
            path.chmod(0o700 if path.is_dir() else 0o600)
        except PermissionError:
            failed.append(str(path))
    return failed


def createstaff_command() -> str:
    """The exact command that creates a staff account against this site's data."""
    program = Path(sys.executable).with_name("piwarden")
    try:
        shown = f"{program.relative_to(Path.cwd())}"
    except ValueError:
        shown = str(program)
    prefix = ""
    if settings.DATA_DIR != DEFAULT_DATA_DIR:
        prefix = f"PIWARDEN_DATA_DIR={shlex.quote(str(settings.DATA_DIR))} "
    return f"{prefix}{shlex.quote(shown)} createstaff alice --role sales"


class Command(BaseCommand):
    help = (
        "Prepare and run the site: migrate, create missing keysets, collect the static files, then start and "
        "supervise gunicorn (WSGI, static files by WhiteNoise), the task worker and the retention housekeeping "
        "(`piwarden housekeeping`, hourly). Ctrl-C stops them all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=envstr("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=envint("PORT", 8000, minimum=1))
        parser.add_argument("--workers", type=int, default=envint("WEB_CONCURRENCY", 2, minimum=1))
        parser.add_argument(
            "--no-worker", action="store_true", help="run the web server only (no worker, no housekeeping)"
        )
        parser.add_argument(
            "--no-housekeeping",
            action="store_true",
            help="do not run the retention housekeeping (run `piwarden housekeeping --once` from cron instead)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = Path(settings.DATA_DIR)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not os.environ.get("SECRET_KEY") and not os.environ.get("SECRET_KEY_FILE"):
            persistent_secret(data_dir / "secret_key")  # before the children, which all read it
        call_command("migrate", interactive=False, verbosity=0)
        call_command("keys", "init")
        unpublished = ensure_published()  # an empty history keeps the declaration in force as version 1
        if unpublished is not None:
            self._log(unpublished)
        # The static files under their hashed names, with .gz and .br copies (settings.STORAGES).
        call_command("collectstatic", interactive=False, verbosity=0)
        for path in tighten(data_dir):
            self._log(f"cannot make {path} owner-only (not ours); fix its owner or mode")
        erasures = ledger.warning()  # a restored database that un-erased people (invariant 6)
        if erasures is not None:
            self._log(erasures)
        host, port = options["host"], options["port"]
        env = dict(os.environ)
        env.setdefault("PIWARDEN_SITE_URL", served_url(host, port))
        serve_id = f"serve-{uuid.uuid4().hex[:12]}"  # names this command's worker incarnations
        children = [
            Child(
                "gunicorn",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "piwarden.wsgi:application",
                    "--config",
                    "python:piwarden.gunicorn_conf",
                    "--bind",
                    f"{host}:{port}",
                    "--workers",
                    str(options["workers"]),
                    "--graceful-timeout",
                    "10",
                    "--log-level",
                    "warning",
                ],
                env,
            )
        ]
        if not options["no_worker"]:
            children.append(
                Child("worker", [sys.executable, "-m", "piwarden", "worker", "--queue-name", "default"], env, serve_id)
            )
        if not options["no_worker"] and not options["no_housekeeping"]:
            # Deletes what the declaration keeps no longer (sessions, task results, sign-in logs,
            # outbox copies), now and every hour; it rides out database outages by itself.
            children.append(Child("housekeeping", [sys.executable, "-m", "piwarden", "housekeeping"], env))
            # rights-queue: reminds at working day 10 and escalates overdue rights requests, hourly.
            remind = [sys.executable, "-m", "piwarden", "rights", "remind", "--every", "3600"]
            children.append(Child("rights-reminders", remind, env))
            # monitoring: the alert rules over the audit log's new events (piwarden audit monitor).
            monitor = [
                sys.executable,
                "-m",
                "piwarden",
                "audit",
                "monitor",
                "--every",
                str(settings.PIWARDEN_ALERT_EVERY),
            ]
            children.append(Child("monitor", monitor, env))
            # access-reviews: opens a due access review, suspends access unreviewed past the
            # deadline and signs the review, sends the training expiry notices; hourly.
            governance = [sys.executable, "-m", "piwarden", "staff", "periodic", "--every", "3600"]
            children.append(Child("staff-periodic", governance, env))
            # incidents: the regulator clock's alerts (4 hours, 1 with CII), checked every minute.
            clock = [sys.executable, "-m", "piwarden", "incidents", "remind", "--every", "60"]
            children.append(Child("incident-clock", clock, env))
        address = served_url(host, port)
        self.stdout.write(
            f"\npiwarden is running at {address}  (English: {address}/en/)\n"
            f"Staff console: {address}/backoffice/\n"
            f"Create a staff account:  {createstaff_command()}\n"
            f"Data directory: {data_dir}    Press Ctrl-C to stop.\n"
        )
        self.stdout.flush()
        self._supervise(children)

    def _supervise(self, children: list[Child]) -> None:
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for child in children:
            child.start()
        while not stopping:
            now = time.monotonic()
            for child in children:
                if child.process is None and now >= child.start_at:
                    self._log(f"starting {child.name} again")
                    child.start()
                elif child.process is not None and child.process.poll() is not None:
                    self._died(child, now)
            time.sleep(POLL_SECONDS)
        self._stop(children)

    def _stop(self, children: list[Child]) -> None:
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            _end_group(child.process.pid)
        self.stdout.write("Stopped.")

    def _died(self, child: Child, now: float) -> None:
        assert child.process is not None  # noqa: S101  # only called for a started child
        code = child.process.returncode
        _end_group(child.process.pid)  # gunicorn's workers, if its master was the one killed
        if now - child.started_at >= HEALTHY_AFTER:
            child.backoff = BACKOFF_FIRST
        if child.name == "worker":
            child.dead_ids.append(child.worker_id())  # its claimed tasks go back to the queue
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        self._log(f"{child.name} {how}; starting it again in {child.backoff:.0f} s")
        child.process = None
        child.start_at = now + child.backoff
        child.backoff = min(child.backoff * 2, BACKOFF_MAX)

    def _log(self, message: str) -> None:
        self.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} piwarden serve: {message}")
        self.stderr.flush()


def _end_group(pgid: int) -> None:
    """SIGKILL whatever is left of a child's process group (nothing, normally)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
