"""piwarden retention replay-erasures | ledger"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from piwarden.people import ledger
from piwarden.people.actions import record_replay, record_unrecorded_erasures, replay_erasure


class Command(BaseCommand):
    help = (
        "The erasure ledger (invariant 6: an erasure survives a backup restore).  replay-erasures: after a "
        "database restore, erase again every person the ledger names whom this database shows as not erased, "
        "and write to the ledger the database's erasures it lacks; safe to run any time, and again (audited).  "
        "ledger: compare the ledger with the database and say what replay-erasures would do."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{replay-erasures,ledger}")
        actions.add_parser("replay-erasures", help="erase again whom a restored database un-erased (idempotent)")
        actions.add_parser("ledger", help="compare the erasure ledger with the database (changes nothing)")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        try:
            comparison = ledger.compare()
        except OSError as exc:
            raise CommandError(f"The erasure ledger {ledger.path()} cannot be read ({exc.strerror}).") from None
        if comparison.damaged:
            raise CommandError(
                f"The erasure ledger {ledger.path()} is damaged: {comparison.damaged}. Restore it from its own "
                "backup and run this again; nothing was replayed."
            )
        if options["action"] == "ledger":
            self._describe(comparison)
            return
        replayed = 0
        total = len(comparison.unerased)
        self._progress(0, total)
        for done, entry in enumerate(comparison.unerased, start=1):
            replayed += replay_erasure(entry)
            self._progress(done, total)
        self.stderr.write("", ending="\n" if total else "")
        if replayed:
            self._fold_sqlite_log()
        recorded = record_unrecorded_erasures(comparison.unrecorded)
        if replayed or recorded:
            record_replay(replayed=replayed, recorded=recorded, entries=comparison.entries)
        self.stdout.write(
            f"Erasure ledger {ledger.path()}: {comparison.entries} entries read in {time.monotonic() - started:.1f} s. "
            f"Erased again: {replayed} person(s); erased already: {comparison.persons - total - comparison.absent}; "
            f"not in this database: {comparison.absent}; "
            f"erasures written to the ledger that it lacked: {recorded}."
        )

    def _fold_sqlite_log(self) -> None:
        """SQLite: fold the write-ahead log into the file and empty it.

        The restore wrote the erased persons' wrapped data keys into the log; until its frames are
        overwritten they stay readable there.  Freed space in the file itself is overwritten
        (``PRAGMA secure_delete``, settings.py).  Busy while other processes read: said, not fatal.
        """
        if connection.vendor != "sqlite":
            return
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy = cursor.fetchone()[0]
        if busy:
            self.stdout.write(
                "The database's write-ahead log could not be emptied (other processes are reading): the old copies "
                "of the erased keys stay in it until it is overwritten; run this again when the site is stopped."
            )

    def _describe(self, comparison: ledger.Comparison) -> None:
        self.stdout.write(
            f"Erasure ledger {ledger.path()}: {comparison.entries} entries, chain intact. "
            f"Not erased in this database: {len(comparison.unerased)}; not in this database: {comparison.absent}; "
            f"erasures the ledger lacks: {len(comparison.unrecorded)}."
        )
        if comparison.unerased or comparison.unrecorded:
            self.stdout.write("Run `piwarden retention replay-erasures`.")

    def _progress(self, done: int, total: int) -> None:
        if not total:
            return
        width = 30
        filled, percent = int(width * done / total), int(100 * done / total)
        # self.stderr so that call_command(stderr=...) and tests see the progress.
        self.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {done}/{total} erasures replayed",
            style_func=lambda text: text,
            ending="",
        )
        self.stderr.flush()
