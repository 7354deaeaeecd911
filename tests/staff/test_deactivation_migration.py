"""Migration staff.0007 dates the accounts already inactive: the migration's time, never earlier.

Nobody recorded when they were deactivated; the clock of their retention (1095 days) starts when
the migration runs, so that nothing is deleted before its declared time.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from piwarden.staff.models import Deactivation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("RET-01")]

BEFORE = [("staff", "0006_access_grant_child_ticket")]


def migrate(targets: list[tuple[str, str]] | None) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def test_inactive_accounts_get_the_migrations_time_and_active_ones_none():
    migrate(BEFORE)
    old_apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
    User = old_apps.get_model("auth", "User")
    gone = User.objects.create(username="olga", password="!", is_staff=True, is_active=False)
    here = User.objects.create(username="yuki", password="!", is_staff=True, is_active=True)

    started = timezone.now()
    migrate(None)

    [dated] = Deactivation.objects.all()
    assert dated.user_id == gone.pk
    assert started <= dated.deactivated_at <= timezone.now()
    assert not Deactivation.objects.filter(user_id=here.pk).exists()
