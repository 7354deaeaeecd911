"""The WSGI module, loaded as gunicorn loads it, leaves start-up's objects out of the collector's sight."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vault.test_start_up import piwarden, run

pytestmark = pytest.mark.slow


def test_loading_the_application_freezes_what_start_up_made(tmp_path: Path) -> None:
    for step in (("migrate", "--verbosity", "0"), ("keys", "init")):
        assert piwarden(*step, data_dir=tmp_path).returncode == 0
    loaded = run("-c", "import gc, piwarden.wsgi; print(gc.get_freeze_count())", data_dir=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert int(loaded.stdout.strip()) > 50_000  # Django and the apps: tens of thousands
