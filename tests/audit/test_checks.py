"""``piwarden check --deploy`` warns when the audit log's append-only triggers are gone."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from piwarden.audit import appendonly
from piwarden.audit.checks import check_append_only_triggers
from tests.commands import piwarden


@pytest.mark.duty("SEC-02")
def test_the_deploy_check_warns_while_the_triggers_are_missing(db: None) -> None:
    assert check_append_only_triggers() == []
    appendonly.remove(connection)
    (warning,) = check_append_only_triggers()
    assert warning.id == "audit.W001"
    assert "audit_event_" in warning.msg
    assert "piwarden audit restore-triggers" in str(warning.hint)
    call_command("audit", "restore-triggers", verbosity=0)
    assert check_append_only_triggers() == []


@pytest.mark.django_db(transaction=True)  # the command's own connection sees the triggers gone
def test_piwarden_check_deploy_names_the_missing_triggers() -> None:
    assert "audit.W001" not in piwarden("check", "--deploy").stderr
    appendonly.remove(connection)
    result = piwarden("check", "--deploy")
    assert "audit.W001" in result.stderr + result.stdout
    assert "append-only triggers are missing, disabled or altered" in result.stderr + result.stdout
