"""Security events' person index: the composite one alone.

The column's own index (Django's, for a foreign key) is the first column of ``security_event_person_idx`` (person, occurred_at): every
look-up by a security event's person, and the check that ``PROTECT`` makes when a person would be
deleted, can use that one.  The single-column index only cost a B-tree page written by every
security event recorded: one WAL page of the consultation POST's ~50 (docs/performance.md, "The consultation POST:
one turn for the counts").  Dropped by name (the name Django gave it on SQLite and PostgreSQL alike);
Django's own ``AlterField`` would rebuild the table on SQLite.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0001_security_events"),
        ("people", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="securityevent",
                    name="person",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="security_events",
                        to="people.person",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "security_securityevent_person_id_d46e5bdf"',
                    reverse_sql='CREATE INDEX "security_securityevent_person_id_d46e5bdf" ON "security_securityevent" ("person_id")',
                ),
            ],
        ),
    ]
