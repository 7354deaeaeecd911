"""The cessation's work as the command and the housekeeping run it: notices before the date,
the erasure on it.

:func:`carry_out` erases everyone, a batch per transaction, telling ``progress`` after each, then
records the end; run again after a crash, it goes on where the last committed batch ended.
:func:`periodic_round` is what ``piwarden housekeeping`` (and so ``piwarden serve``) runs every
hour: before the date, add the people reachable since the announcement and send the notices
not sent yet; from the date, carry the cessation out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

from piwarden.cessation import actions, mail
from piwarden.cessation.state import read

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Carried:
    persons_erased: int  # by this run
    total_erased: int  # by the cessation so far
    wal_folded: bool  # SQLite: the write-ahead log emptied (old pages of the erased keys gone)


def carry_out(*, batch: int = actions.BATCH, progress: Progress | None = None) -> Carried:
    """Erase every person not erased yet, then record that the cessation is carried out."""
    cessation = actions.begin_execution()
    if cessation.executed_at is not None:  # carried out already: nothing to do again
        return Carried(persons_erased=0, total_erased=cessation.persons_erased, wal_folded=_fold_sqlite_log())
    total = actions.remaining()
    done = 0
    if progress is not None:
        progress(0, total)
    while True:
        erased = actions.erase_batch(cessation, size=batch)
        if not erased:
            break
        done += erased
        if progress is not None:
            progress(min(done, total), total)
    finished = actions.finish_execution(cessation)
    return Carried(persons_erased=done, total_erased=finished.persons_erased, wal_folded=_fold_sqlite_log())


def _fold_sqlite_log() -> bool:
    """SQLite: fold the write-ahead log into the file and empty it, so that the pages that held the
    erased people's keys and look-up digests are not left in it (freed pages of the file itself are
    overwritten: ``PRAGMA secure_delete``).  False when other processes' reads kept it busy."""
    if connection.vendor != "sqlite":
        return True
    if connection.in_atomic_block:  # a caller's transaction (a test's): the checkpoint cannot run in one
        return False
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = cursor.fetchone()[0]
    return not busy


@dataclass(frozen=True)
class RoundResult:
    added: int = 0
    notices: mail.Round | None = None
    carried: Carried | None = None

    def notable(self) -> bool:
        sent = self.notices is not None and (self.notices.sent or self.notices.failed or self.notices.skipped)
        return bool(self.added or sent or self.carried)

    def describe(self) -> str:
        if self.carried is not None:
            return f"cessation carried out: {self.carried.persons_erased} person(s) erased"
        if self.notices is None:
            return "no cessation announced"
        n = self.notices
        return f"cessation notices: {self.added} added, {n.sent} sent, {n.skipped} not needed, {n.failed} failed"


def periodic_round() -> RoundResult:
    """One hourly round; nothing when no cessation is live or it is carried out already."""
    standing = read()
    if not standing.announced or standing.executed:
        return RoundResult()
    if standing.due():
        return RoundResult(carried=carry_out())
    added = actions.collect_notices()
    return RoundResult(added=added, notices=mail.send_pending())
