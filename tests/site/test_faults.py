"""Faults: the site outlives its processes' deaths and its database's hiccups.

Each test runs a real `piwarden serve` (gunicorn and the task worker, supervised), posts the
consultation form to it from several threads, breaks something underneath, and ends with: the site
answering, every acknowledged request (answered with the redirect to "received") stored whole, no
partial rows, and the audit chain verifying.  They are slow (tens of seconds each), marked
``slow``; `make test` runs them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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
            assert master is not None
            assert gunicorn_workers
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
        assert site.process is not None
        assert site.process.poll() is None
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


def fill(database: Path, max_pages: int) -> None:
    """Grow the SQLite file up to the page cap the site runs under, as a full disk would stop it."""
    connection = sqlite3.connect(database, timeout=60, isolation_level=None)
    try:
        connection.execute(f"PRAGMA max_page_count={max_pages}")
        connection.execute("CREATE TABLE filler (b BLOB)")
        with pytest.raises(sqlite3.OperationalError, match="full"):
            insert_until_full(connection)
    finally:
        connection.close()


def insert_until_full(connection: sqlite3.Connection) -> None:
    for _ in range(100_000):
        connection.execute("INSERT INTO filler VALUES (randomblob(16384))")


def free(database: Path) -> None:
    """Give the space back: the dropped table's pages go to SQLite's free list, for the site to reuse."""
    connection = sqlite3.connect(database, timeout=60, isolation_level=None)
    try:
        connection.execute("DROP TABLE filler")
    finally:
        connection.close()


def assert_503_in_both_languages(site: Site) -> None:
    zh = site.post_consultation(str(uuid.uuid4()))
    assert zh.status == 503
    assert int(zh.headers["retry-after"]) > 0
    assert "数据库暂时无法访问" in zh.body
    en = site.post_consultation(str(uuid.uuid4()), language="en")
    assert en.status == 503
    assert int(en.headers["retry-after"]) > 0
    assert "Our database cannot be reached" in en.body


def test_a_full_disk_on_sqlite_answers_503_and_the_site_resumes_by_itself_when_space_is_freed(tmp_path: Path):
    max_pages = 3000  # 12 MB: a fresh database is well under it
    env = operator_env(tmp_path / "var", free_port(), PIWARDEN_SQLITE_MAX_PAGES=str(max_pages))
    site = Site(env, tmp_path / "serve.log").start()
    database = tmp_path / "var" / "piwarden.sqlite3"
    try:
        with Load(site) as load:
            wait_until(lambda: load.count(302) >= 5, "the first acknowledged requests")
            worker = worker_pid(site)
            fill(database, max_pages)
            wait_until(lambda: load.count(503) >= 5, "requests answered 503 while the disk is full")
            assert_503_in_both_languages(site)
            free(database)
            before = load.count(302)
            wait_until(lambda: load.count(302) >= before + 5, "the site to resume once space was freed")
        acknowledged = load.acknowledged()
        assert 500 not in load.statuses()
        assert worker_pid(site) == worker  # the worker rode the full disk out: it never exited
        stored = assert_whole(site, acknowledged)
        wait_until(
            lambda: set(site.inspect()["acknowledged"]) >= set(stored["tokens"]),
            "every stored request to be acknowledged by e-mail",
        )
    finally:
        assert site.stop() == 0
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# --- PostgreSQL ------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, if the server is installed."""
    candidates = [Path(p).parent for p in filter(None, [shutil.which("pg_ctl"), shutil.which("initdb")])]
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    for directory in candidates:
        real = directory.joinpath("pg_ctl").resolve().parent
        if all((real / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return real
    return None


@dataclass
class Cluster:
    """A PostgreSQL cluster of the test's own, on a free port, run as the postgres user when root."""

    bin: Path
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, str(self.bin / program), *args], check=True, capture_output=True, timeout=120)  # noqa: S603  # fixed argv

    def pg_ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            "pg_ctl", action, "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-w", "-o", options, *args
        )


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    directory = postgres_bin()
    if directory is None:
        pytest.skip("the PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed")
    root = Path(tempfile.mkdtemp(prefix="piwarden-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")  # the server refuses to run as root
    cluster = Cluster(directory, root, free_port())
    cluster.run("initdb", "-D", str(root / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
    cluster.pg_ctl("start")
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)


def test_a_postgresql_restart_under_load_answers_503_meanwhile_and_the_site_resumes_by_itself(
    tmp_path: Path, cluster: Cluster
):
    env = operator_env(tmp_path / "var", free_port(), DATABASE_URL=cluster.url)
    site = Site(env, tmp_path / "serve.log").start()
    try:
        with Load(site) as load:
            wait_until(lambda: load.count(302) >= 5, "the first acknowledged requests")
            worker = worker_pid(site)
            cluster.pg_ctl("restart", "-m", "fast")  # what the issue saw: a restart under load
            before = load.count(302)
            wait_until(lambda: load.count(302) >= before + 5, "the site to resume after the restart")

            cluster.pg_ctl("stop", "-m", "fast")  # and a longer outage, to look at the answers it gets
            wait_until(lambda: load.count(503) >= 5, "requests answered 503 while the database is down")
            assert_503_in_both_languages(site)
            # The worker polls once a second: let it meet the outage (five 503s can take less than that).
            wait_until(lambda: "database unavailable" in site.log(), "the worker to say what it is waiting for")
            cluster.pg_ctl("start")
            before = load.count(302)
            wait_until(lambda: load.count(302) >= before + 5, "the site to resume once the database is back")
        acknowledged = load.acknowledged()
        assert 500 not in load.statuses()
        assert worker_pid(site) == worker  # the worker rode both outages out: it never exited
        stored = assert_whole(site, acknowledged)
        wait_until(
            lambda: set(site.inspect()["acknowledged"]) >= set(stored["tokens"]),
            "every stored request to be acknowledged by e-mail",
        )
    finally:
        assert site.stop() == 0
    assert "database unavailable" in site.log()  # the worker said what it was waiting for
