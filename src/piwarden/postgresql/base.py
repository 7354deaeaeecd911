"""Django's PostgreSQL backend, with ``flush`` able to empty the append-only audit log.

The audit log's triggers refuse TRUNCATE (``piwarden.audit.appendonly``); ``flush`` (which a
test's ``transactional_db`` runs after it) drops them around its TRUNCATE and puts them back,
in its transaction.  Dropping a trigger needs the table's owner: a role without DDL rights
cannot flush the log either.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base, operations

from piwarden.audit import appendonly


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style: Any, tables: Any, *, reset_sequences: bool = False, allow_cascade: bool = False) -> Any:
        statements = super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return appendonly.around_flush(self.connection.vendor, tables, statements)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
