"""The audit log's person index: the composite one alone.

The column's own index (Django's, for a foreign key) is the first column of ``audit_person_id_idx`` (person, id): every
look-up by an event's person, and the check that ``PROTECT`` makes when a person would be
deleted, can use that one.  The single-column index only cost a B-tree page written by every
event appended: one WAL page of the consultation POST's ~50 (docs/performance.md, "The consultation POST:
one turn for the counts").  Dropped by name (the name Django gave it on SQLite and PostgreSQL alike);
Django's own ``AlterField`` would rebuild the table on SQLite.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0014_append_only_cut"),
        ("people", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="person",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="audit_events",
                        to="people.person",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "audit_auditevent_person_id_41e59516"',
                    reverse_sql='CREATE INDEX "audit_auditevent_person_id_41e59516" ON "audit_auditevent" ("person_id")',
                ),
            ],
        ),
    ]
