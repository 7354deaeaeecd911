"""piwarden retention sweep | plan | hold | replay-erasures | ledger"""

from __future__ import annotations

import datetime
import time
from collections import Counter
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection
from django.utils import timezone

from piwarden.errors import describe
from piwarden.people import ledger
from piwarden.people.actions import record_replay, record_unrecorded_erasures, replay_erasure
from piwarden.people.ledger import LedgerUnavailable
from piwarden.people.models import Person
from piwarden.retention import actions as retention_actions
from piwarden.retention.cut import Outcome as CutOutcome
from piwarden.retention.models import LegalHold
from piwarden.retention.plan import plan
from piwarden.retention.sweep import BATCH, PEOPLE_BATCH, SQLITE_PEOPLE_BATCH, ClockAhead, run_retention


def _day(value: str) -> datetime.date:
    return datetime.date.fromisoformat(value)


class Command(BaseCommand):
    help = (
        "Retention (policy §三(二)).  sweep: apply every declared category's retention now (the housekeeping's "
        "jobs, then each category the sweep removes, in batches with a progress bar on stderr; one "
        "retention.batch audit event per batch and person.shredded per person erased; idempotent, and a run "
        "after a crash finishes what the crashed one left); the audit log (access_records, access_reasons) is"
        " cut at the newest signed checkpoint past its retention and before the first event a legal hold "
        "covers, and the events before the cut deleted (docs/audit-log-cut.md).  It refuses, with an alert, "
        "when the clock is more than PIWARDEN_RETENTION_CLOCK_SKEW hours ahead of the last reading it "
        "trusted.  plan: per category, how many records go on which day and what holds them back (for the "
        "audit log: the next cut point).  hold place|lift|list: legal holds.  The erasure ledger (invariant "
        "6: an erasure survives a backup restore).  replay-erasures: after a database restore, erase again "
        "every person the ledger names whom this database shows as not erased, and write to the ledger the "
        "database's erasures it lacks; safe to run any time, and again (audited).  ledger: compare the ledger"
        " with the database and say what replay-erasures would do."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{sweep,plan,hold,replay-erasures,ledger}"
        )
        swept = actions.add_parser("sweep", help="apply every category's retention now (idempotent, resumable)")
        swept.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help=f"rows per transaction (default {BATCH}; where people are erased with them {PEOPLE_BATCH}, "
            f"{SQLITE_PEOPLE_BATCH} on SQLite)",
        )
        swept.add_argument(
            "--clock-confirmed",
            action="store_true",
            help="the clock is right although it reads far after the last sweep (the site was stopped): audited",
        )
        planned = actions.add_parser("plan", help="what goes on which day, and what holds it back")
        planned.add_argument("--days", type=int, default=30, help="days ahead shown one by one (default 30)")
        hold = actions.add_parser("hold", help="legal holds: place, lift, list")
        holds = hold.add_subparsers(dest="hold_action", required=True, metavar="{place,lift,list}")
        place = holds.add_parser("place", help="keep a person's data or a category past its retention")
        scope = place.add_mutually_exclusive_group(required=True)
        scope.add_argument("--person", metavar="REFERENCE", help="the person's reference (as the console shows it)")
        scope.add_argument("--category", help="a declared category id")
        place.add_argument("--reason", required=True, help="a case or file reference (no personal information)")
        place.add_argument("--until", required=True, type=_day, metavar="YYYY-MM-DD", help="the hold's last day")
        place.add_argument("--by", metavar="USERNAME", help="the privacy officer who decided it")
        lift = holds.add_parser("lift", help="end a hold early, with the reason")
        lift.add_argument("hold", type=int)
        lift.add_argument("--reason", required=True)
        lift.add_argument("--by", metavar="USERNAME")
        holds.add_parser("list", help="the holds in force")
        actions.add_parser("replay-erasures", help="erase again whom a restored database un-erased (idempotent)")
        actions.add_parser("ledger", help="compare the erasure ledger with the database (changes nothing)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "sweep":
            return self._sweep(options)
        if options["action"] == "plan":
            return self._plan(options["days"])
        if options["action"] == "hold":
            return self._hold(options)
        return self._ledger(options)

    # --- sweep, plan, holds ---------------------------------------------------------------------

    def _sweep(self, options: dict[str, Any]) -> None:
        started = time.monotonic()
        now = timezone.now()
        try:
            jobs, report = run_retention(
                now,
                batch_size=max(1, options["batch_size"]) if options["batch_size"] else None,
                progress=self._bar,
                clock_confirmed=options["clock_confirmed"],
            )
        except ClockAhead as exc:
            raise CommandError(str(exc)) from None
        except (DatabaseError, LedgerUnavailable) as exc:
            raise CommandError(
                f"The sweep stopped: {describe(exc)}. What it removed so far is recorded; run it again to finish."
            ) from None
        for name, count in jobs.deleted.items():
            if count:
                self.stdout.write(f"{name}: {count} deleted")
        for name, problem in jobs.failed.items():
            self.stderr.write(f"{name}: failed ({problem})")
        for outcome in report.outcomes:
            line = f"{outcome.category} ({outcome.model}): {outcome.rows} {outcome.action}"
            if outcome.erased:
                line += f", {outcome.erased} person(s) erased"
            if outcome.held_rows:
                why = (
                    f"hold(s) {', '.join(map(str, outcome.holds))} on the category"
                    if outcome.holds
                    else (f"holds on {outcome.held_persons} person(s)")
                )
                line += f"; {outcome.held_rows} past their retention kept by {why}"
            self.stdout.write(line)
        if report.cut is not None:
            self._cut(report.cut)
        self.stdout.write(f"Retention sweep {report.run} done in {time.monotonic() - started:.1f} s.")
        if jobs.failed:
            raise CommandError("retention sweep: not every housekeeping job ran; see the lines above")

    def _cut(self, cut: CutOutcome) -> None:
        line = f"access_records, access_reasons (audit log): {cut.deleted} event(s) deleted"
        if cut.cut_seq:
            line += f"; {'cut now' if cut.made else 'cut'} at seq {cut.cut_seq}"
        if cut.kept:
            line += f"; {cut.kept} at or below the cut kept by legal holds"
        if cut.held:
            line += "; the next cut held back by " + "; ".join(cut.held)
        self.stdout.write(line)
        if cut.refused:
            self.stderr.write(f"The audit log was not cut: {cut.refused}. Run `piwarden audit verify`.")

    def _bar(self, label: str, done: int, total: int) -> None:
        if not total:
            return
        width = 30
        filled, percent = int(width * done / total), int(100 * done / total)
        self.stderr.write(
            f"\r{label:<24} [{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {done}/{total}",
            style_func=lambda text: text,
            ending="\n" if done >= total else "",
        )
        self.stderr.flush()

    def _plan(self, days: int) -> None:
        now = timezone.now()
        lines = plan(now, days=days)
        tables = Counter(line.category for line in lines)
        for line in lines:
            # A category kept in several tables: one line per table, each named.
            table = f" [{line.model}]" if tables[line.category] > 1 else ""
            head = f"{line.category}{table} ({line.days} days {line.starts}; {line.action})"
            if line.action in ("kept", "elsewhere"):
                self.stdout.write(f"{head}: {line.note}")
                continue
            if line.action == "cut":
                self.stdout.write(f"{head}: {line.note}; events due now {line.due_now}")
                for held in line.held:
                    self.stdout.write(f"  held back: {held}")
                continue
            due = line.due_now - line.held_rows
            held = f" ({line.held_rows} held back)" if line.held_rows else ""
            self.stdout.write(f"{head}: due now {due}{held}; after the next {days} days {line.later}")
            for day, count in sorted(line.by_day.items()):
                self.stdout.write(f"  {day.isoformat()}: {count}")
            for held in line.held:
                self.stdout.write(f"  held back: {held}")

    def _staff(self, username: str | None) -> User | None:
        if not username:
            return None
        user = User.objects.filter(username=username, is_staff=True).first()
        if user is None:
            raise CommandError(f"No staff account is named {username!r}.")
        return user

    def _hold(self, options: dict[str, Any]) -> None:
        act = options["hold_action"]
        if act == "list":
            for hold in LegalHold.objects.in_force(timezone.now()).select_related("person"):
                self.stdout.write(f"{hold.pk}: {hold.scope} until {hold.ends_on} — {hold.reason}")
            return
        by = self._staff(options.get("by"))
        try:
            if act == "place":
                person = None
                if options["person"]:
                    person = _person_by_reference(options["person"])
                hold = retention_actions.place_hold(
                    person=person,
                    category=options["category"] or "",
                    reason=options["reason"],
                    ends_on=options["until"],
                    by=by,
                )
                self.stdout.write(f"Legal hold {hold.pk} placed on {hold.scope} until {hold.ends_on}.")
            else:
                hold = retention_actions.lift_hold(options["hold"], reason=options["reason"], by=by)
                self.stdout.write(f"Legal hold {hold.pk} lifted.")
        except retention_actions.HoldRefused as exc:
            raise CommandError(str(exc)) from None

    # --- the erasure ledger ---------------------------------------------------------------------

    def _ledger(self, options: dict[str, Any]) -> None:
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


def _person_by_reference(reference: str) -> Person:
    """The person whose reference (the id's last 10 hex digits, as the console shows it) this is."""
    tail = reference.strip().lower()
    found = [p for p in Person.objects.filter(id__endswith=tail) if tail and p.reference.lower() == tail]
    if len(found) != 1:
        raise CommandError(f"No single person has the reference {reference!r}.")
    return found[0]
