"""Start-up fails closed: with keys that are missing or not the database's, nothing starts.

Real processes on a real installation of their own (SQLite in a temporary data directory, made
by the real commands): ``piwarden serve``, gunicorn loading ``piwarden.wsgi``, the commands that
touch personal data, and ``piwarden check --deploy``.  Each must refuse with one line naming
what is missing, where it was looked for and what to do, and must never create keys.

The installation is made once per module (migrate, ``keys init``, 张伟 becomes a person through
the real write path) and copied for each test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from piwarden.vault.keys import BLIND_FILE, KEK_FILE, LocalKeysetProvider
from tests.test_environment import production

FORCE_FLAG = "--i-understand-existing-data-becomes-unreadable"
STARTS_A_PERSON = (
    "from django.db import transaction\n"
    "from piwarden.people.actions import find_or_create_person\n"
    "with transaction.atomic():\n"
    "    find_or_create_person(email='zhang.wei@example.com', phone='13800138000')\n"
)


def operator_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment an operator's shell would have: none of the test run's own settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIWARDEN_", "DJANGO_", "EMAIL_"))
        and k not in {"DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}
    }
    return env | settings | {"PIWARDEN_DATA_DIR": str(data_dir)}


def run(*argv: str, data_dir: Path, timeout: float = 120, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own interpreter and commands
        [sys.executable, *argv],
        env=operator_env(data_dir, **settings),
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def piwarden(*args: str, data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return run("-m", "piwarden", *args, data_dir=data_dir, **settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until_it_exits(argv: list[str], data_dir: Path, timeout: float = 90) -> tuple[int, str]:
    """Run a server; it must stop by itself.  One that serves instead is stopped, and the test fails."""
    process = subprocess.Popen(  # noqa: S603  # our own interpreter and commands
        [sys.executable, *argv],
        env=operator_env(data_dir),
        cwd=data_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate()[0]
        pytest.fail(f"{argv[:4]} kept running without the database's keys:\n{output[-3000:]}")
    return process.returncode, output


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("installation")
    for step in (("migrate", "--verbosity", "0"), ("keys", "init"), ("shell", "-c", STARTS_A_PERSON)):
        result = piwarden(*step, data_dir=data_dir)
        assert result.returncode == 0, result.stdout + result.stderr
    return data_dir


@pytest.fixture
def site(installation: Path, tmp_path: Path) -> Path:
    """A copy of the installation: this test's to break."""
    data_dir = tmp_path / "var"
    shutil.copytree(installation, data_dir)
    return data_dir


def keys_moved_away(data_dir: Path) -> None:
    (data_dir / "keys").rename(data_dir / "keys.moved")


def keys_of_another_install(data_dir: Path) -> None:
    shutil.rmtree(data_dir / "keys")
    LocalKeysetProvider(data_dir / "keys").initialise()


def blind_index_key_of_another_install(data_dir: Path) -> None:
    other = data_dir / "other-keys"
    LocalKeysetProvider(other).initialise()
    shutil.copyfile(other / BLIND_FILE, data_dir / "keys" / BLIND_FILE)


def the_one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


def assert_says_missing_where_and_what_to_do(line: str, data_dir: Path) -> None:
    assert f"{data_dir / 'keys' / KEK_FILE} is missing" in line  # what, and where it was looked for
    assert "Restore the keys from your backup" in line  # what to do
    assert FORCE_FLAG in line


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


# -- piwarden serve ------------------------------------------------------------------------------------


@pytest.mark.duty("SEC-01")
def test_serve_refuses_to_start_when_the_keys_were_moved_away(site):
    port = free_port()
    keys_moved_away(site)

    code, output = until_it_exits(["-m", "piwarden", "serve", "--workers", "1", "--port", str(port)], site)

    assert code != 0
    assert_says_missing_where_and_what_to_do(the_one_line(output), site)
    assert "Created keysets" not in output
    assert not (site / "keys").exists()  # no new keys over 张伟's data


@pytest.mark.duty("SEC-01")
def test_serve_refuses_to_start_with_another_installations_keys(site):
    keys_of_another_install(site)
    theirs = snapshot(site / "keys")

    code, output = until_it_exits(["-m", "piwarden", "serve", "--workers", "1", "--port", str(free_port())], site)

    assert code != 0
    line = the_one_line(output)
    assert "not the ones this database was written with" in line
    assert "PIWARDEN_KEYS=file:" in line
    assert snapshot(site / "keys") == theirs


# -- the web process itself: no gunicorn worker serves ------------------------------------------------------


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize("breakage", [keys_moved_away, keys_of_another_install, blind_index_key_of_another_install])
def test_gunicorn_does_not_serve_without_the_databases_keys(site, breakage):
    breakage(site)
    argv = ["-m", "gunicorn", "piwarden.wsgi:application", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1"]

    code, output = until_it_exits(argv, site)

    assert code == 4, output  # gunicorn: "App failed to load." - the arbiter stops, no worker is left
    refusals = [line for line in output.splitlines() if line.startswith("piwarden: ")]
    assert len(refusals) == 1, output
    if breakage is keys_moved_away:
        assert_says_missing_where_and_what_to_do(refusals[0], site)
    else:
        assert "not the ones this database was written with" in refusals[0]
    assert "Traceback" not in output


# -- every command that touches personal data ------------------------------------------------------------------


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize(
    "command",
    [
        ("db_worker", "--queue-name", "default"),
        ("createstaff", "alice", "--role", "sales", "--password-file", "/nonexistent"),
        ("outbox", "list"),
        ("shell", "-c", STARTS_A_PERSON),
    ],
    ids=lambda c: c[0],
)
def test_a_command_that_touches_personal_data_refuses_without_the_keys(site, command):
    keys_moved_away(site)

    result = piwarden(*command, data_dir=site)

    assert result.returncode == 2
    assert result.stdout == ""
    assert_says_missing_where_and_what_to_do(the_one_line(result.stderr), site)
    assert result.stderr.startswith("piwarden: ")
    assert not (site / "keys").exists()


@pytest.mark.duty("SEC-01")
def test_a_returning_email_is_never_indexed_under_another_blind_index_key(site):
    blind_index_key_of_another_install(site)

    result = piwarden("shell", "-c", STARTS_A_PERSON, data_dir=site)

    assert result.returncode == 2
    assert "blind-index key" in the_one_line(result.stderr)


# -- piwarden check --deploy -------------------------------------------------------------------------------------


@pytest.mark.duty("SEC-01")
def test_the_deploy_check_reports_keys_that_cannot_open_the_data_as_an_error(site):
    assert piwarden("check", "--deploy", data_dir=site, **production()).returncode == 0
    keys_of_another_install(site)

    result = piwarden("check", "--deploy", data_dir=site, **production())

    assert result.returncode == 1
    assert "(vault.E001)" in result.stderr
    assert "not the ones this database was written with" in result.stderr


RETIRE_THE_OLD_KEK_TOO_EARLY = (
    "import json\n"
    "from django.conf import settings\n"
    "from pathlib import Path\n"
    "from piwarden.vault import keycheck\n"
    "from piwarden.vault.keys import get_provider\n"
    "provider = get_provider()\n"
    "old = provider.kek_primary_id()\n"
    "provider.rotate()\n"  # a new primary, and the check row sealed under it (as `keys rotate` does) ...
    "keycheck.reseal_key_check()\n"
    "path = Path(settings.PIWARDEN_KEYS.removeprefix('file:')) / 'kek.json'\n"
    "keyset = json.loads(path.read_text())\n"  # ... but the old key dropped before any data key moved
    "keyset['key'] = [k for k in keyset['key'] if k['keyId'] != old]\n"
    "path.write_text(json.dumps(keyset))\n"
)


@pytest.mark.duty("SEC-01")
def test_data_keys_under_a_kek_key_the_keyset_no_longer_holds_stop_start_up(site):
    assert piwarden("shell", "-c", RETIRE_THE_OLD_KEK_TOO_EARLY, data_dir=site).returncode == 0

    result = piwarden("shell", "-c", STARTS_A_PERSON, data_dir=site)

    assert result.returncode == 2
    line = the_one_line(result.stderr)
    assert "1 data keys are wrapped under key-encryption keys the keyset does not hold" in line
    assert "Restore the right keys from your backup" in line
