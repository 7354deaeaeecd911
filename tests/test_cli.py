"""A `piwarden` command run against a database that has not been migrated says so in one line,
with what to run: no traceback, and no stray data directory left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def piwarden(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIWARDEN_", "DJANGO_")) and k != "DATABASE_URL"}
    env |= settings
    return subprocess.run(  # noqa: S603  # our own command
        [sys.executable, "-m", "piwarden", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


COUNT = "from piwarden.inquiries.models import Inquiry; print(Inquiry.objects.count())"
COMMANDS = [("createstaff", "alice", "--role", "sales"), ("shell", "-c", COUNT)]


@pytest.mark.parametrize("command", COMMANDS)
def test_in_a_fresh_directory_a_command_says_to_migrate_and_creates_nothing(tmp_path, command):
    result = piwarden(*command, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "piwarden migrate" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no stray var/


@pytest.mark.parametrize("command", COMMANDS)
def test_against_an_empty_database_a_command_says_to_migrate(tmp_path, command):
    data = tmp_path / "data"
    data.mkdir()
    (data / "piwarden.sqlite3").touch()
    result = piwarden(*command, cwd=tmp_path, PIWARDEN_DATA_DIR=str(data))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "has not been migrated" in result.stderr
    assert "piwarden migrate" in result.stderr


def test_migrate_then_the_command_works(tmp_path):
    assert piwarden("migrate", cwd=tmp_path).returncode == 0
    result = piwarden("shell", "-c", COUNT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0"
