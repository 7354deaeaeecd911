"""piwarden serve: the production server and its task worker, in one command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Prepare and run the site: migrate, create missing keysets, then start "
        "gunicorn (WSGI, static files by WhiteNoise) and the django-tasks-db worker. Ctrl-C stops both."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
        parser.add_argument("--no-worker", action="store_true", help="run the web server only")

    def handle(self, *args: Any, **options: Any) -> None:
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("keys", "init")
        address = f"http://{options['host']}:{options['port']}"
        children = [
            subprocess.Popen(  # noqa: S603  # argv is ours: this interpreter and fixed arguments
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "piwarden.wsgi:application",
                    "--bind",
                    f"{options['host']}:{options['port']}",
                    "--workers",
                    str(options["workers"]),
                    "--graceful-timeout",
                    "10",
                    "--log-level",
                    "warning",
                ]
            )
        ]
        if not options["no_worker"]:
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "piwarden", "db_worker", "--queue-name", "default", "--interval", "1"]
                )
            )
        self.stdout.write(
            f"\npiwarden is running at {address}  (English: {address}/en/)\n"
            f"Staff console: {address}/backoffice/\n"
            f"Create a staff account:  .venv/bin/piwarden createstaff alice --role sales\n"
            f"Data directory: {settings.DATA_DIR}    Press Ctrl-C to stop.\n"
        )
        self._supervise(children)

    def _supervise(self, children: list[subprocess.Popen[bytes]]) -> None:
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    self.stderr.write(f"{child.args!r} exited ({child.returncode}); stopping.")
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.5)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        self.stdout.write("Stopped.")
        if exit_code:
            sys.exit(exit_code)
