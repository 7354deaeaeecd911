"""Running ``piwarden`` as an operator does: a separate process, on the test's own database."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
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


def killed_when(argv: list[str], ready: Callable[[], bool], *, within: float = 120, **env: str) -> int:
    """Run ``piwarden ARGV…`` and SIGKILL it (its whole process group) once ``ready()`` holds, as a
    crash would stop it; ``ready`` is polled every 20 ms; ``env`` adds to ``command_env()``.
    Returns the process's exit status."""
    process = subprocess.Popen(  # noqa: S603  # our own command, fixed argv
        [PIWARDEN, *argv],
        env=command_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + within
        while not ready():
            assert process.poll() is None, f"`piwarden {' '.join(argv)}` ended before it could be killed"
            assert time.monotonic() < deadline, f"not ready within {within:.0f} s"
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    return process.returncode
