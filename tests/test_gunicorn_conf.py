"""Files and processes of a real `piwarden serve`, started as an operator would with umask 022:
owner-only files, forwarded headers not believed unless behind a declared proxy, no server
software in the `Server` header, e-mail links to where the site is served, and the exact
`createstaff` command for the data directory in use."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shlex
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import Site, free_port, operator_env, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("files")
    data_dir = root / "elsewhere" / "data"  # not ./var: the printed commands must name it
    env = operator_env(data_dir, free_port(), PIWARDEN_HTTPS="on")
    previous = os.umask(0o022)  # the common default, which makes new files world-readable
    try:
        running = Site(env, root / "serve.log").start()
    finally:
        os.umask(previous)
    try:
        yield running
    finally:
        running.stop()


def data_dir(site: Site) -> Path:
    return Path(site.env["PIWARDEN_DATA_DIR"])


def test_every_file_under_the_data_directory_is_owner_only_whatever_the_umask(site: Site):
    assert site.post_consultation(str(uuid.uuid4())).status == 302  # writes the database, WAL, outbox
    wait_until(lambda: any((data_dir(site) / "outbox").glob("*")), "the acknowledgement in the outbox")
    found = {path.name for path in data_dir(site).rglob("*")}
    assert {"piwarden.sqlite3", "piwarden.sqlite3-wal", "piwarden.sqlite3-shm", "secret_key", "keys"} <= found
    loose = {
        str(path): oct(stat.S_IMODE(path.stat().st_mode))
        for path in [data_dir(site), *data_dir(site).rglob("*")]
        if stat.S_IMODE(path.stat().st_mode) != (0o700 if path.is_dir() else 0o600)
    }
    assert loose == {}


def test_forwarded_headers_from_this_machine_are_not_believed_without_a_declared_proxy(site: Site):
    answer = site.request("GET", "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"})
    assert answer.status == 200
    assert "strict-transport-security" not in answer.headers  # it was not HTTPS, whatever the header said


def test_the_server_header_names_no_software(site: Site):
    answer = site.get("/")
    assert "gunicorn" not in str(answer.headers).lower()
    assert "server" not in answer.headers


def test_e_mails_link_to_the_address_the_site_is_served_at(site: Site):
    assert site.post_consultation(str(uuid.uuid4())).status == 302

    def bodies() -> list[str]:
        names = piwarden(site, "outbox", "list").stdout.split()
        texts = []
        for name in [n for n in names if n.endswith(".eml.sealed")]:
            message = email.message_from_string(
                piwarden(site, "outbox", "show", name).stdout, policy=email.policy.default
            )
            texts += [part.get_content() for part in message.walk() if part.get_content_type() == "text/plain"]
        return texts

    texts = wait_until(bodies, "acknowledgement e-mails")
    links = {link for text in texts for link in re.findall(r"http://\S+/privacy/", text)}
    assert links
    assert links <= {f"http://127.0.0.1:{site.port}/privacy/", f"http://127.0.0.1:{site.port}/en/privacy/"}


def test_serve_prints_the_exact_createstaff_command_for_the_data_directory_in_use(site: Site, tmp_path: Path):
    printed = re.search(r"Create a staff account:\s+(.+)", site.log())
    assert printed is not None
    command = printed[1].strip()
    assert f"PIWARDEN_DATA_DIR={data_dir(site)}" in command
    password = tmp_path / "pw"
    password.write_text("correct horse battery staple 42")
    env = {k: v for k, v in site.env.items() if k != "PIWARDEN_DATA_DIR"}
    # Run exactly what was printed, from the directory `make run` runs in, in a fresh shell.
    result = subprocess.run(  # noqa: S603  # the command under test
        ["/bin/sh", "-c", f"{command} --password-file {shlex.quote(str(password))}"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stored = piwarden(site, "shell", "-c", "from django.contrib.auth.models import User; print(User.objects.count())")
    assert stored.stdout.strip().splitlines()[-1] == "1"


def piwarden(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own command
        [sys.executable, "-m", "piwarden", *args],
        env=site.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
