"""piwarden keys init | status | rotate"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from piwarden.vault.actions import initialise_keys, rotate_keys
from piwarden.vault.crypto import count_unopenable
from piwarden.vault.keycheck import FORCE_FLAG, key_check_status, verify_keys
from piwarden.vault.keys import LocalKeysetProvider, VaultUnavailable, get_provider
from piwarden.vault.models import DataKey


class Command(BaseCommand):
    help = (
        "Manage the key-encryption keys. "
        "`init` creates keysets for an empty installation, and for any other checks that the keys at hand "
        "are the ones the database was written with (it never replaces a keyset file; creating keys over "
        f"existing data needs {FORCE_FLAG} and is audited); "
        "`status` shows the KEK keys, how many data keys each wraps and how many none can unwrap "
        "(exit status 1 when any cannot, or when the keys do not match the database); "
        "`rotate` adds a new KEK key, makes it primary and re-wraps every data key "
        "in batches (safe to interrupt and run again; the site keeps reading throughout)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["init", "status", "rotate"])
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--resume", action="store_true", help="rotate: only re-wrap keys left behind by an interrupted rotation"
        )
        parser.add_argument(
            FORCE_FLAG,
            dest="force",
            action="store_true",
            help=(
                "init: put keys in place although the database holds data written with other keys. "
                "WARNING: every personal field stored so far becomes unreadable for good. Audited."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        provider = get_provider()
        action = options["action"]
        try:
            if action == "init":
                self._init(provider, force=options["force"])
            elif action == "status":
                self._status(provider)
            else:
                self._rotate(options["batch_size"], resume=options["resume"])
        except VaultUnavailable as exc:
            raise CommandError(str(exc)) from None

    def _init(self, provider: Any, *, force: bool) -> None:
        result = initialise_keys(force=force)
        where = provider.directory if isinstance(provider, LocalKeysetProvider) else "the external key provider"
        if result.created:
            self.stdout.write(f"Created keysets in {where} (mode 0600). Back them up apart from the database.")
        else:
            self.stdout.write(f"Keysets already present in {where}.")
        if result.replaced:
            self.stderr.write(
                f"These keys are now the database's keys. {result.unreadable} data keys written with the "
                "old keys can no longer be unwrapped; this was recorded in the audit log."
            )

    def _status(self, provider: Any) -> None:
        try:
            provider.kek()
            provider.blind_prf()
        except VaultUnavailable:
            verify_keys(record=False)  # raises the one-line account: what is missing, where, what to do
            raise
        primary = provider.kek_primary_id()
        key_ids = provider.key_ids()
        for key_id in key_ids:
            count = DataKey.objects.filter(kek_key_id=key_id, destroyed_at__isnull=True).count()
            mark = " (primary)" if key_id == primary else ""
            self.stdout.write(f"KEK key {key_id}{mark}: wraps {count} data keys")
        foreign = (
            DataKey.objects.filter(destroyed_at__isnull=True)
            .exclude(kek_key_id__in=key_ids)
            .values_list("kek_key_id", flat=True)
            .distinct()
        )
        for key_id in foreign:
            count = DataKey.objects.filter(kek_key_id=key_id, destroyed_at__isnull=True).count()
            self.stdout.write(f"KEK key {key_id} (not in the keyset): wraps {count} data keys")
        destroyed = DataKey.objects.filter(destroyed_at__isnull=False).count()
        self.stdout.write(f"Destroyed (crypto-shredded) data keys: {destroyed}")
        live, unopenable = count_unopenable()
        self.stdout.write(f"Data keys the current KEKs cannot unwrap: {unopenable} of {live}")
        mismatch = key_check_status()
        self.stdout.write(f"Key check: {mismatch or 'these are the keys the database was written with'}")
        where = f"PIWARDEN_KEYS={settings.PIWARDEN_KEYS}"
        if mismatch is not None:
            raise CommandError(
                f"the keys at {where} are not the ones this database was written with: {mismatch}. "
                "Restore the right keys from your backup."
            )
        if unopenable:
            raise CommandError(
                f"{unopenable} of {live} data keys cannot be unwrapped with the keys at {where}. "
                "Restore the keys from your backup."
            )

    def _rotate(self, batch_size: int, *, resume: bool) -> None:
        if not resume:
            self.stdout.write("Adding a new primary KEK key and re-wrapping every data key under it…")
        started = time.monotonic()
        rotation = rotate_keys(batch_size=batch_size, resume=resume, progress=self._progress)
        self.stderr.write("", style_func=_plain)
        if rotation.new_key_id is not None:
            self.stdout.write(f"New primary KEK key {rotation.new_key_id}.")
        self.stdout.write(f"Re-wrapped {rotation.rewrapped} data keys in {time.monotonic() - started:.1f} s.")

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
