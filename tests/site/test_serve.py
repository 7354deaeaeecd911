"""`piwarden serve` (what `make run` starts): a fresh data directory becomes a working site, the
retention housekeeping runs beside it, and Ctrl-C stops the web server, the task worker and the
housekeeping together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.serving import command_line, descendants, parent_of, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 300) -> bytes:  # migrating took 80 s on a loaded machine
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  # our own loopback URL
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_serve_starts_a_working_site_on_a_fresh_data_dir_and_stops_on_ctrl_c(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PIWARDEN_KEYS", "SECRET_KEY"}}
    env |= {"PIWARDEN_DATA_DIR": str(tmp_path / "var"), "PORT": str(port), "PIWARDEN_CAPTCHA_TEST_MODE": "off"}
    # A sealed e-mail left from long ago (the outbox judges age by the name alone): the housekeeping
    # that serve starts must delete it without anyone running `outbox prune`.
    outbox = tmp_path / "var" / "outbox"
    outbox.mkdir(parents=True)
    expired = outbox / "20000101-000000-000000000000.eml.sealed"
    expired.write_bytes(b"{}")
    # An erasure ledger whose first line was edited: serve says so at start-up, with what to do.
    (tmp_path / "var" / "erasures.ledger").write_text('{"seq":1,"person":"edited"}\n')
    server = subprocess.Popen(  # our own command
        [sys.executable, "-m", "piwarden", "serve", "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        home = wait_for(f"http://127.0.0.1:{port}/").decode()
        assert "隐私政策" in home
        assert "Privacy policy" in wait_for(f"http://127.0.0.1:{port}/en/privacy/").decode()
        keys = tmp_path / "var" / "keys" / "kek.json"
        assert keys.exists()
        assert keys.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "var" / "piwarden.sqlite3").exists()
        housekeeping = [
            pid
            for pid in descendants(server.pid)
            if " piwarden housekeeping" in command_line(pid) and parent_of(pid) == server.pid
        ]
        assert len(housekeeping) == 1
        # rights-queue: the rights requests' reminders and escalations, hourly.
        reminders = [pid for pid in descendants(server.pid) if " piwarden rights remind" in command_line(pid)]
        assert len(reminders) == 1
        # monitoring: the alert rules over the audit log, every PIWARDEN_ALERT_EVERY seconds.
        monitors = [
            pid for pid in descendants(server.pid) if " piwarden audit monitor --every 300" in command_line(pid)
        ]
        assert len(monitors) == 1
        wait_until(lambda: not expired.exists(), "the housekeeping to delete the expired outbox copy")
    finally:
        os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        output = server.communicate(timeout=60)[0].decode()
    assert f"http://127.0.0.1:{port}" in output
    assert "createstaff" in output  # it tells the operator how to make a staff account
    assert "Stopped." in output
    assert "piwarden serve: the erasure ledger" in output
    assert "is damaged: line 1 is not a ledger entry" in output
    assert "piwarden housekeeping: sealed outbox copies (outbox_copies): 1 deleted" in output
    assert server.returncode == 0
    # Nothing of it is left running.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
