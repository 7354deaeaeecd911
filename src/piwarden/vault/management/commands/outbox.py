"""piwarden outbox list | show NAME | prune"""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from piwarden.vault.access import open_outbox_messages
from piwarden.vault.actions import prune_outbox
from piwarden.vault.keys import VaultUnavailable
from piwarden.vault.outbox import SUFFIX, expired_files, retention, sealed_files


class Command(BaseCommand):
    help = (
        "Read and prune the embedded e-mail outbox (PIWARDEN_EMAIL=file). Messages are sealed under "
        "the key-encryption key; `list` shows them (oldest first), `show NAME` prints one. "
        "`prune` applies the retention rule: it deletes every sealed message sent longer ago than the "
        "retention_days that policy/declaration.toml gives the category holding the file store "
        "'vault:outbox' (outbox_copies), judged by the UTC time at the start of the file name (which "
        "the seal authenticates), and records how many in the audit log; `--dry-run` only counts. "
        "Run it daily (cron, a systemd timer). A person's messages are also deleted when the person "
        "is shredded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "show", "prune"])
        parser.add_argument("name", nargs="?")
        parser.add_argument("--dry-run", action="store_true", help="prune: count, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(settings.PIWARDEN_OUTBOX_DIR)
        try:
            if options["action"] == "list":
                self._list(directory)
            elif options["action"] == "prune":
                self._prune(directory, dry_run=options["dry_run"])
            else:
                self._show(directory, options["name"])
        except VaultUnavailable as exc:
            raise CommandError(str(exc)) from None

    def _list(self, directory: Path) -> None:
        paths = [sealed.path for sealed in sealed_files(directory)]
        for path, raw in zip(paths, open_outbox_messages(paths, action="list"), strict=True):
            message = message_from_bytes(raw, policy=policy.default)
            self.stdout.write(f"{path.name}  {message['Subject']}")
        self.stdout.write(f"{len(paths)} message(s) in {directory}")

    def _show(self, directory: Path, name: str | None) -> None:
        if not name:
            raise CommandError("Name the message to show (see `piwarden outbox list`).")
        path = directory / Path(name).name
        if not name.endswith(SUFFIX) or not path.is_file():
            raise CommandError(f"No message {name!r} in {directory}.")
        [raw] = open_outbox_messages([path], action="show")
        message = message_from_bytes(raw, policy=policy.default)
        self.stdout.write(message.as_string())

    def _prune(self, directory: Path, *, dry_run: bool) -> None:
        try:
            days = retention().days
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        if dry_run:
            count = len(expired_files(directory))
            self.stdout.write(f"{count} sealed message(s) older than {days} days in {directory}; none deleted.")
            return
        deleted = prune_outbox(directory)
        self.stdout.write(f"Deleted {deleted} sealed message(s) older than {days} days from {directory}.")
