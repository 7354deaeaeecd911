"""Running ``piwarden`` as an operator does: a separate process, on the test's own database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from django.db import connection

PIWARDEN = shutil.which("piwarden", path=str(Path(sys.executable).parent)) or "piwarden"


def command_env(**extra: str) -> dict[str, str]:
    """The environment of the test run, pointed at this test's database."""
    env = {k: v for k, v in os.environ.items() if k != "PIWARDEN_CAPTCHA_TEST_MODE"}  # its warning is not ours
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{settings_dict['NAME']}"
    else:
        env["DATABASE_URL"] = (
            f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
        )
    env.update(extra)
    return env


def piwarden(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``piwarden ARGV…`` without a terminal (no input), its output captured; ``env`` adds to ``command_env()``."""
    return subprocess.run(  # noqa: S603  # our own command, fixed argv
        [PIWARDEN, *argv], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=command_env(**env), check=False
    )
