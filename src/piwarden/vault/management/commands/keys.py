"""piwarden keys init | status | rotate"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from piwarden.audit.log import EventType, record_event
from piwarden.vault.crypto import rewrap_all
from piwarden.vault.keys import LocalKeysetProvider, VaultUnavailable, get_provider
from piwarden.vault.models import DataKey


class Command(BaseCommand):
    help = (
        "Manage the key-encryption keys. "
        "`init` creates missing keysets (never replaces one); "
        "`status` shows the KEK keys and how many data keys each wraps; "
        "`rotate` adds a new KEK key, makes it primary and re-wraps every data key "
        "in batches (safe to interrupt and run again; the site keeps reading throughout)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["init", "status", "rotate"])
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--resume", action="store_true", help="rotate: only re-wrap keys left behind by an interrupted rotation"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        provider = get_provider()
        action = options["action"]
        try:
            if action == "init":
                self._init(provider)
            elif action == "status":
                self._status(provider)
            else:
                self._rotate(provider, options["batch_size"], resume=options["resume"])
        except VaultUnavailable as exc:
            raise CommandError(str(exc)) from None

    def _init(self, provider: Any) -> None:
        if not isinstance(provider, LocalKeysetProvider):
            self.stdout.write("Keys are held by an external provider; nothing to create.")
            return
        if provider.initialise():
            self.stdout.write(
                f"Created keysets in {provider.directory} (mode 0600). Back them up apart from the database."
            )
        else:
            self.stdout.write(f"Keysets already present in {provider.directory}.")

    def _status(self, provider: Any) -> None:
        primary = provider.kek_primary_id()
        for key_id in provider.key_ids():
            count = DataKey.objects.filter(kek_key_id=key_id, destroyed_at__isnull=True).count()
            mark = " (primary)" if key_id == primary else ""
            self.stdout.write(f"KEK key {key_id}{mark}: wraps {count} data keys")
        destroyed = DataKey.objects.filter(destroyed_at__isnull=False).count()
        self.stdout.write(f"Destroyed (crypto-shredded) data keys: {destroyed}")

    def _rotate(self, provider: Any, batch_size: int, *, resume: bool) -> None:
        if not resume:
            new_id = provider.rotate()
            self.stdout.write(f"New primary KEK key {new_id}; re-wrapping data keys…")
        started = time.monotonic()
        moved = rewrap_all(batch_size=batch_size, progress=self._progress)
        self.stderr.write("", style_func=_plain)
        with transaction.atomic():
            record_event(
                EventType.KEYS_ROTATED,
                extra={"primary_key_id": provider.kek_primary_id(), "rewrapped": moved},
            )
        self.stdout.write(f"Re-wrapped {moved} data keys in {time.monotonic() - started:.1f} s.")

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = width if total == 0 else int(width * done / total)
        percent = 100 if total == 0 else int(100 * done / total)
        # self.stderr (not sys.stderr) so that call_command(stderr=...) and tests see the progress.
        self.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {done}/{total} data keys",
            style_func=_plain,
            ending="",
        )
        self.stderr.flush()


def _plain(text: str) -> str:
    """Progress is not an error: keep it out of the red the command's stderr uses by default."""
    return text
