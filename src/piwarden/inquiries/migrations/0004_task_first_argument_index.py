"""An index on the first argument of the queued tasks (django-tasks-db's table), which names the
consultation request a task works on: a person's tasks are found through it when their data is
exported or erased (``inquiries.personal_data._first_argument`` spells the same expression).
Without it each look-up read the whole task table (25 ms at 40,000 tasks)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

INDEX = "piwarden_task_first_argument"
TABLE = "django_tasks_database_dbtaskresult"


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        expression = "((args_kwargs -> 'args') ->> 0)"
    else:
        expression = "json_extract(args_kwargs, '$.args[0]')"
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} ({expression})")


def drop(apps: Any, schema_editor: Any) -> None:
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("inquiries", "0003_labels_and_personal_data_base"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
