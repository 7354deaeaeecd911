"""The append-only triggers installed again: SQLite's UPDATE trigger of the audit events now also
refuses a sealing UPDATE onto a seq or hash another event holds (UPDATE OR REPLACE would delete
that event without firing the DELETE trigger).  A database migrated with 0009 before that change
holds the older text, which ``piwarden audit verify`` would report as altered."""

from typing import Any

from django.db import migrations

from piwarden.audit import appendonly


class RunSQLPerVendor(migrations.RunSQL):
    """RunSQL with statements per database vendor (as in 0009)."""

    def __init__(self, sql: dict[str, list[str]], reverse_sql: dict[str, list[str]]) -> None:
        super().__init__(sql=[], reverse_sql=[])
        self.by_vendor, self.reverse_by_vendor = sql, reverse_sql

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        self.sql = self.by_vendor.get(schema_editor.connection.vendor, [])
        super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        self.reverse_sql = self.reverse_by_vendor.get(schema_editor.connection.vendor, [])
        super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0009_append_only_triggers"),
    ]

    # Installing drops and re-creates each trigger (idempotent); backwards leaves them in place.
    operations = [RunSQLPerVendor({"sqlite": appendonly.INSTALL["sqlite"]}, {})]
