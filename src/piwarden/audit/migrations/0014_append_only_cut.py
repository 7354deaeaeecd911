"""The append-only triggers with the cut (piwarden.audit.appendonly): an event at or below the
greatest cut_seq may be deleted (the retention sweep), and a cut is never changed or deleted."""

from importlib import import_module

from django.db import migrations

from piwarden.audit import appendonly

# RunSQL with statements per vendor, as 0009 ran them.
RunSQLPerVendor = import_module("piwarden.audit.migrations.0009_append_only_triggers").RunSQLPerVendor


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0013_audit_cut"),
    ]

    operations = [RunSQLPerVendor(appendonly.INSTALL, appendonly.BACK_TO_BEFORE_CUTS)]
