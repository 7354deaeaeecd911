"""Triggers that refuse UPDATE and DELETE of audit events and checkpoints (piwarden.audit.appendonly)."""

from typing import Any

from django.db import migrations

from piwarden.audit import appendonly


class RunSQLPerVendor(migrations.RunSQL):
    """RunSQL with statements per database vendor (the triggers' syntax differs)."""

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
        ("audit", "0008_checkpoints_and_refusal_rejected"),
    ]

    # The statements of the time (the cut came in 0014): running today's would name a table not made yet.
    operations = [RunSQLPerVendor(appendonly.INSTALL_BEFORE_CUTS, appendonly.REMOVE_BEFORE_CUTS)]
