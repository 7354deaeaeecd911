"""Faults: the site outlives its processes' deaths and its database's hiccups.

Each test runs a real `piwarden serve` (gunicorn and the task worker, supervised), posts the
consultation form to it from several threads, breaks something underneath, and ends with: the site
answering, every acknowledged request (answered with the redirect to "received") stored whole, no
partial rows, and the audit chain verifying.  They are slow (tens of seconds each), marked
``slow``; `make test` runs them.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.serving import (
    Load,
    Site,
    assert_whole,
    free_port,
    gunicorn_pids,
    operator_env,
    wait_until,
    worker_pid,
)

pytestmark = pytest.mark.slow


def test_kill_9_of_the_worker_and_of_gunicorn_is_survived_and_nothing_acknowledged_is_lost(tmp_path: Path):
    site = Site(operator_env(tmp_path / "var", free_port()), tmp_path / "serve.log").start()
    try:
        with Load(site) as load:
            wait_until(lambda: load.count(302) >= 5, "the first acknowledged requests")
            worker = worker_pid(site)
            assert worker is not None
            os.kill(worker, signal.SIGKILL)
            wait_until(lambda: worker_pid(site) not in {None, worker}, "serve to start the worker again")

            master, gunicorn_workers = gunicorn_pids(site)
            assert master is not None and gunicorn_workers
            os.kill(gunicorn_workers[0], signal.SIGKILL)  # gunicorn's master replaces its worker
            before = load.count(302)
            wait_until(lambda: load.count(302) >= before + 5, "requests acknowledged after a gunicorn worker died")

            os.kill(master, signal.SIGKILL)  # serve replaces gunicorn itself, and ends its orphans
            wait_until(lambda: gunicorn_pids(site)[0] not in {None, master}, "serve to start gunicorn again")
            before = load.count(302)
            wait_until(lambda: load.count(302) >= before + 5, "requests acknowledged after gunicorn was replaced")
        acknowledged = load.acknowledged()
        assert 500 not in load.statuses()
        assert site.get("/").status == 200
        assert site.process is not None and site.process.poll() is None  # serve itself never stopped
        stored = assert_whole(site, acknowledged)
        # The restarted worker, handed the dead one's claimed tasks, acknowledges every request.
        wait_until(
            lambda: set(site.inspect()["acknowledged"]) >= set(stored["tokens"]),
            "every stored request to be acknowledged by e-mail",
        )
    finally:
        assert site.stop() == 0
    log = site.log()
    assert "worker killed by signal 9; starting it again" in log
    assert "gunicorn killed by signal 9; starting it again" in log
