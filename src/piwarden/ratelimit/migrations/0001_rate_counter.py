import piwarden.vault.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="RateCounter",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "window_start", "bucket", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "window_start",
                    models.BigIntegerField(help_text="Unix seconds at which the window began (a multiple of its length)."),
                ),
                (
                    "bucket",
                    piwarden.vault.fields.BlindIndexField(
                        blank=False,
                        editable=False,
                        help_text="Blind index of 'scope|client address'.",
                        max_length=64,
                        null=False,
                    ),
                ),
                ("count", models.IntegerField(help_text="Requests counted in this window.")),
            ],
        ),
    ]
