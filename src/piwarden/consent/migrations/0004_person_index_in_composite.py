"""Consent records' person index: the composite one alone.

The column's own index (Django's, for a foreign key) is the first column of ``consent_person_purpose_idx`` (person, purpose): every
look-up by a consent record's person, and the check that ``PROTECT`` makes when a person would be
deleted, can use that one.  The single-column index only cost a B-tree page written by every
consent recorded: one WAL page of the consultation POST's ~50 (docs/performance.md, "The consultation POST:
one turn for the counts").  Dropped by name (the name Django gave it on SQLite and PostgreSQL alike);
Django's own ``AlterField`` would rebuild the table on SQLite.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0003_consent_policy_version"),
        ("people", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="consentrecord",
                    name="person",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="consents",
                        to="people.person",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "consent_consentrecord_person_id_3df6780a"',
                    reverse_sql='CREATE INDEX "consent_consentrecord_person_id_3df6780a" ON "consent_consentrecord" ("person_id")',
                ),
            ],
        ),
    ]
