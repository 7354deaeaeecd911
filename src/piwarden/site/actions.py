"""Write paths of the site's housekeeping: the retention sweep.

The database deletions of a sweep and the one ``retention.swept`` audit event that counts them
share a durable transaction (invariant 3), each job in a savepoint of its own so that one job
failing (a missing table, an unreadable directory) is reported and the others still run.  Files
cannot be rolled back: the outbox job runs last, and not at all once the connection is lost.
The jobs and their rules are in :mod:`piwarden.site.housekeeping`.
"""

from __future__ import annotations

import datetime
import logging

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.errors import describe
from piwarden.people.ledger import LedgerUnavailable
from piwarden.site.housekeeping import EXPIRIES, JOBS, Sweep

logger = logging.getLogger("piwarden.housekeeping")


class SweepLostDatabase(DatabaseError):
    """The database went away during the sweep: nothing of it was kept, nothing recorded."""


@transaction.atomic(durable=True)
def sweep_retention(now: datetime.datetime | None = None) -> Sweep:
    """Run every job once; record one ``retention.swept`` event when anything was deleted."""
    now = now or timezone.now()
    result = Sweep()
    for expiry in EXPIRIES:
        try:
            with transaction.atomic():
                result.deleted[expiry.name] = expiry.delete(now)
            if expiry.category:  # a person's data, deleted early by a rule of its own
                result.categories[expiry.name] = expiry.category
        # Reported like a job's; the jobs still run.  Not only DatabaseError: the unverified rights
        # requests' expiry erases people, which needs the erasure ledger (LedgerUnavailable); its
        # savepoint then keeps the requests, so the next sweep tries again.
        except Exception as exc:  # reported in the log, the output and the audit event
            result.failed[expiry.name] = describe(exc)
            expected = isinstance(exc, DatabaseError | OSError | LedgerUnavailable)
            logger.error("%s failed: %s", expiry.name, describe(exc), exc_info=not expected)
    for job in JOBS:
        if connection.needs_rollback:
            # An earlier job lost the connection: the transaction is rolled back, so no job may
            # delete what could no longer be recorded (the outbox's files cannot be restored).
            raise SweepLostDatabase(f"the database connection was lost; nothing deleted ({result.failed})")
        try:
            category = job.category()
            with transaction.atomic():
                count = job.delete(category, now)
        # One job's failure, whatever it is, must not stop the others: each serves its own promise.
        except Exception as exc:  # reported in the log, the output and the audit event
            result.failed[job.name] = describe(exc)
            # An outage or a missing table is told in one line; anything else is a bug: its traceback.
            expected = isinstance(exc, DatabaseError | OSError | LookupError)
            logger.error("%s failed: %s", job.name, describe(exc), exc_info=not expected)
            continue
        result.deleted[job.name] = count
        result.categories[job.name] = category.id
        result.retention_days[category.id] = category.retention_days
    if connection.needs_rollback:
        raise SweepLostDatabase(f"the database connection was lost; nothing deleted ({result.failed})")
    counts = result.per_category()
    if any(counts.values()):
        record_event(
            EventType.RETENTION_SWEPT,
            extra={
                "deleted": {category: n for category, n in counts.items() if n},
                "retention_days": {c: d for c, d in result.retention_days.items() if counts.get(c)},
                "failed": sorted(result.failed),
            },
        )
    return result


@transaction.atomic(durable=True)
def record_captcha_failure(form: str) -> None:
    """A public form came back with its CAPTCHA wrong (or its challenge used up or expired): which
    form, never who.  The rate limit before the form bounds how many a client can write."""
    record_event(EventType.CAPTCHA_FAILED, actor_kind=ActorKind.VISITOR, purpose="security", extra={"form": form})
