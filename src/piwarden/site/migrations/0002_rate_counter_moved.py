"""The rate-limit counters moved to the ratelimit app (its migration 0001 creates their table).

Counters live a day at most and only throttle: the old table is dropped, nothing is copied.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("site", "0001_rate_counter"),
    ]

    operations = [
        migrations.DeleteModel(name="RateCounter"),
    ]
