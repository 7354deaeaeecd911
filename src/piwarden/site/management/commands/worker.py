"""piwarden worker: django-tasks-db's ``db_worker`` that outlives its database's hiccups.

``db_worker`` exits on any database error other than "locked": a PostgreSQL restart ("the
database system is starting up", connection refused) or a full disk on SQLite ("database or disk
is full", "disk I/O error") ended it for good.  This command keeps the library's worker loop and
options and adds, by subclassing (never by patching the library):

* transient database errors (``OperationalError``, ``InterfaceError``) anywhere in the loop are
  logged in one line, the broken connections dropped, and the loop resumes after a back-off
  (1, 2, 4 … 30 seconds; reset once the database has answered again for a minute);
* a task claimed before the database went away goes back to the queue (``READY``) instead of
  staying ``RUNNING`` for ever, and a task that itself failed with a transient database error is
  queued again after the back-off instead of being recorded as failed: the tasks are idempotent
  (see ``piwarden.inquiries.tasks``), so running one again sends nothing twice;
* ``--recover-from WORKER_ID`` returns the tasks a dead worker had claimed (``piwarden serve``
  passes the id of the worker it has just seen die, e.g. after ``kill -9``);
* a thread that seals the audit events requests appended, every second
  (``piwarden.audit.chain.seal_every``; ``--no-audit-sealer`` leaves it to ``piwarden audit seal``).
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError
from django.db import InterfaceError, OperationalError, connections
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from piwarden.audit.chain import seal_every
from piwarden.errors import describe

logger = logging.getLogger("piwarden.worker")

TRANSIENT = (OperationalError, InterfaceError)
TRANSIENT_PATHS = frozenset(f"{cls.__module__}.{cls.__qualname__}" for cls in TRANSIENT)
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
BACKOFF_RESET_AFTER = 60.0  # seconds of a working database before the back-off starts again at 1 s


def drop_connections() -> None:
    """Close every database connection so that the next query opens a fresh one."""
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except TRANSIENT:
            # Closing a connection whose server went away can fail too; it is gone either way.
            connection.connection = None


class ResilientWorker(Worker):
    def __init__(self, *, recover_from: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recover_from = recover_from
        self.claimed: DBTaskResult[Any, Any] | None = None  # the task this worker runs now, if any
        self.backoff = BACKOFF_FIRST

    def run(self) -> None:
        last_failure = float("-inf")
        while self.running:
            try:
                self._recover()
                super().run()
                return  # --batch or --max-tasks: the library's loop ended normally
            except TRANSIENT as exc:
                if "no such table" in str(exc):
                    raise  # SQLite says so for a database never migrated: not an outage to wait out
                now = time.monotonic()
                if now - last_failure > BACKOFF_RESET_AFTER:
                    self.backoff = BACKOFF_FIRST
                last_failure = now
                logger.warning("database unavailable (%s); trying again in %.0f s", describe(exc), self.backoff)
                drop_connections()
                self.startup_delay = False
                # A SIGTERM during this sleep ends the worker at once (the library's handler exits
                # when no task is running), so stopping is never delayed by an outage.
                time.sleep(self.backoff)
                self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    def run_task(self, db_task_result: DBTaskResult[Any, Any]) -> None:
        self.claimed = db_task_result
        super().run_task(db_task_result)  # raises when even recording the outcome failed
        self.claimed = None
        if db_task_result.status == TaskResultStatus.FAILED and db_task_result.exception_class_path in TRANSIENT_PATHS:
            self._requeue([db_task_result.pk], TaskResultStatus.FAILED)
            logger.warning("task %s met a database outage; queued again", db_task_result.pk)

    def _recover(self) -> None:
        """Put back what this worker (or a dead one named by --recover-from) left claimed."""
        stranded: list[Any] = []
        if self.claimed is not None:
            stranded.append(self.claimed.pk)
        if self.recover_from:
            dead = set(self.recover_from)
            running = DBTaskResult.objects.running().values_list("pk", "worker_ids")
            stranded += [pk for pk, worker_ids in running if worker_ids and worker_ids[-1] in dead]
            self.recover_from = []
        if stranded:
            count = self._requeue(stranded, TaskResultStatus.RUNNING)
            if count:
                logger.warning("returned %d interrupted task(s) to the queue", count)
        self.claimed = None

    def _requeue(self, pks: list[Any], status: str) -> int:
        run_after = timezone.now() + datetime.timedelta(seconds=self.backoff)
        return DBTaskResult.objects.filter(pk__in=pks, status=status).update(
            status=TaskResultStatus.READY,
            run_after=run_after,
            started_at=None,
            finished_at=None,
            exception_class_path="",
            traceback="",
        )


class Command(DbWorkerCommand):
    help = (
        "Run the task worker (django-tasks-db's db_worker) so that it rides out database outages: "
        "transient errors are retried with back-off, never the end of the worker."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--recover-from",
            action="append",
            default=[],
            metavar="WORKER_ID",
            help="return the tasks this dead worker had claimed to the queue (repeatable)",
        )
        parser.add_argument(
            "--no-audit-sealer",
            action="store_true",
            help="do not seal the audit log every second in this process (run `piwarden audit seal` instead)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # As the library's handle(), with our worker; --reload is not offered (a production worker).
        self.configure_logging(options["verbosity"])
        queue_names = options["queue_name"].split(",")
        excluded_queue_names = options["exclude_queues"].split(",") if options["exclude_queues"] else []
        if excluded_queue_names and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = ResilientWorker(
            recover_from=options["recover_from"],
            queue_names=queue_names,
            interval=options["interval"],
            batch=options["batch"],
            backend_name=options["backend_name"],
            startup_delay=options["startup_delay"],
            max_tasks=options["max_tasks"],
            worker_id=options["worker_id"],
            excluded_queue_names=excluded_queue_names,
        )
        worker.configure_signals()
        if not options["no_audit_sealer"]:
            # Its own thread (and so its own connection); a daemon, so that it never delays the
            # worker's exit: a seal cut short is a transaction rolled back, done again next time.
            stop = threading.Event()
            threading.Thread(target=seal_every, args=(stop,), name="audit-sealer", daemon=True).start()
        worker.run()
