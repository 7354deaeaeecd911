"""Consent records link to the published policy version they were given under (CHG-02).

The link is the column that always held the declaration's digest (``policy_hash``): only Django's
view of it changes, into a foreign key to ``policy.PolicyVersion.digest``.  No row is touched and
no constraint is added: records given before versions were kept hold digests that no stored
version has, and a consent record is evidence, never rewritten.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0002_cookie_choices"),
        ("policy", "0001_versions"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="consentrecord", name="policy_hash"),
                migrations.AddField(
                    model_name="consentrecord",
                    name="policy",
                    field=models.ForeignKey(
                        db_column="policy_hash",
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="consents",
                        to="policy.policyversion",
                        to_field="digest",
                    ),
                    preserve_default=False,
                ),
            ],
            database_operations=[],
        ),
    ]
