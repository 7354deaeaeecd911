"""piwarden outbox list | show NAME"""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from piwarden.vault.keys import VaultUnavailable
from piwarden.vault.outbox import SUFFIX, open_sealed


class Command(BaseCommand):
    help = (
        "Read the embedded e-mail outbox (PIWARDEN_EMAIL=file). Messages are sealed under the "
        "key-encryption key; `list` shows them (newest last), `show NAME` prints one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "show"])
        parser.add_argument("name", nargs="?")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(settings.PIWARDEN_OUTBOX_DIR)
        files = sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []
        try:
            if options["action"] == "list":
                for path in files:
                    message = message_from_bytes(open_sealed(path), policy=policy.default)
                    self.stdout.write(f"{path.name}  {message['Subject']}")
                self.stdout.write(f"{len(files)} message(s) in {directory}")
                return
            name = options["name"]
            if not name:
                raise CommandError("Name the message to show (see `piwarden outbox list`).")
            path = directory / Path(name).name
            if not path.is_file():
                raise CommandError(f"No message {name!r} in {directory}.")
            message = message_from_bytes(open_sealed(path), policy=policy.default)
            self.stdout.write(message.as_string())
        except VaultUnavailable as exc:
            raise CommandError(str(exc)) from None
