"""``piwarden check --deploy``: the audit log's append-only triggers are in place."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register  # noqa: A004  # Django's name
from django.db import DatabaseError, connection
from django.db.migrations.recorder import MigrationRecorder

from piwarden.audit import appendonly
from piwarden.vault.keycheck import database_ready

MIGRATION = ("audit", "0009_append_only_triggers")


# Deploy-only and silent before the migration that makes them (a new database, a test run's start).
@register(Tags.security, deploy=True)
def check_append_only_triggers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not database_ready():  # an SQLite file that is not there yet: asking would create it
        return []
    try:
        if MIGRATION not in MigrationRecorder(connection).applied_migrations():
            return []
        gone = appendonly.missing(connection)
    except DatabaseError:
        return []
    if not gone:
        return []
    return [
        Warning(
            f"The audit log's append-only triggers are missing, disabled or altered ({', '.join(gone)}): "
            "UPDATE and DELETE of audit events are no longer refused. Only someone who can alter the "
            "schema removes them.",
            hint="Run `piwarden audit verify` (it names any event changed since), then "
            "`piwarden audit restore-triggers`.",
            id="audit.W001",
        )
    ]
