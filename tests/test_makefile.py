"""`make run` installs the production dependencies only; `make test` adds the dev group."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def planned(target: str, venv: Path) -> list[str]:
    """The commands make would run for ``target`` in a fresh environment (``make -n``: nothing runs)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    result = subprocess.run(  # noqa: S603  # fixed argv
        [make, "-n", "-B", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [line for line in result.stdout.splitlines() if " sync " in line]


def test_make_run_syncs_without_the_dev_group_and_make_test_with_it(tmp_path):
    run = planned("run", tmp_path / "venv")
    assert run
    assert all("--no-dev" in line for line in run)
    test = planned("test", tmp_path / "venv")
    assert test
    assert any("--no-dev" not in line for line in test)
