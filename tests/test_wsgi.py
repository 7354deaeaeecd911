"""The WSGI module, loaded as gunicorn loads it, leaves start-up's objects out of the collector's sight."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vault.test_start_up import piwarden, run

pytestmark = pytest.mark.slow


def test_loading_the_application_freezes_what_start_up_made(tmp_path: Path) -> None:
    for step in (("migrate", "--verbosity", "0"), ("keys", "init"), ("collectstatic", "--no-input", "-v", "0")):
        assert piwarden(*step, data_dir=tmp_path).returncode == 0
    loaded = run("-c", "import gc, piwarden.wsgi; print(gc.get_freeze_count())", data_dir=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert int(loaded.stdout.strip()) > 50_000  # Django and the apps: tens of thousands


def test_without_the_collected_static_files_the_application_refuses_to_load(tmp_path: Path) -> None:
    """Every page would answer 500 (no hashed name for its stylesheet): gunicorn is told to stop instead."""
    for step in (("migrate", "--verbosity", "0"), ("keys", "init")):
        assert piwarden(*step, data_dir=tmp_path).returncode == 0
    refused = run("-c", "import piwarden.wsgi", data_dir=tmp_path)
    assert refused.returncode == 4
    assert refused.stdout == ""
    assert refused.stderr.startswith("piwarden: the static files are not collected")
    assert "piwarden collectstatic" in refused.stderr
    assert piwarden("collectstatic", "--no-input", "-v", "0", data_dir=tmp_path).returncode == 0
    loaded = run("-c", "import piwarden.wsgi", data_dir=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
