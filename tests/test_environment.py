"""Configuration from the environment: bad values stop start-up with one line; production is clean.

Each test runs the real ``piwarden`` command in a subprocess with an operator's environment
(none of the test run's own PIWARDEN_* settings) and a data directory of its own.
"""

from __future__ import annotations

import datetime
import os
import secrets
import stat
import string
import subprocess
import sys
from pathlib import Path

import pytest

from piwarden.environment import envhours, persistent_secret

# Variables the operator sets; the subprocess starts without any of them unless a test sets it.
OPERATOR_VARIABLES = ("DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "ALLOWED_HOSTS", "DATABASE_URL", "LOG_LEVEL")


def piwarden(*args: str, data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIWARDEN_", "DJANGO_", "EMAIL_")) and k not in OPERATOR_VARIABLES
    }
    env.update(settings, PIWARDEN_DATA_DIR=str(data_dir))
    return subprocess.run(  # noqa: S603  # our own command, fixed arguments
        [sys.executable, "-m", "piwarden", *args],
        env=env,
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def a_secret_key() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits + "!@#%^&*(-_=+)") for _ in range(50))


def production(**overrides: str) -> dict[str, str]:
    """What an operator sets for a public HTTPS deployment."""
    return {
        "DEBUG": "off",
        "SECRET_KEY": a_secret_key(),
        "ALLOWED_HOSTS": "www.example.com",
        "PIWARDEN_HTTPS": "on",
        "PIWARDEN_SSL_REDIRECT": "on",
        "PIWARDEN_CAPTCHA_TEST_MODE": "off",
        "PIWARDEN_EMAIL": "smtp",
        "EMAIL_HOST": "smtp.example.com",
        **overrides,
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("PIWARDEN_CAPTCHA", "sometimes"),
        ("PIWARDEN_EMAIL", "pigeon"),
        ("DATABASE_URL", "nonsense://x"),
        ("SECRET_KEY_FILE", "/nonexistent"),
        ("PIWARDEN_STAFF_IDLE_SECONDS", "abc"),
        ("PIWARDEN_STAFF_IDLE_SECONDS", "5"),
        ("SECRET_KEY", "  "),
        ("PIWARDEN_CONSULTATION_RATE", "5 a minute"),
        ("PIWARDEN_ALERT_WORKING_HOURS", "9 to 6"),
        ("PIWARDEN_ALERT_WORKING_HOURS", "18:00-09:00"),
        ("PIWARDEN_ALERT_WORKING_HOURS", "09:00-25:00"),
    ],
)
def test_a_bad_value_stops_start_up_with_one_line_naming_the_variable(tmp_path, variable, value):
    result = piwarden("check", data_dir=tmp_path, **{variable: value})

    assert result.returncode == 2, result.stderr
    assert result.stderr.endswith("\n")
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("piwarden: configuration error: ")
    assert variable in lines[0]
    assert result.stdout == ""


def test_a_production_configuration_passes_the_deploy_check_cleanly(tmp_path):
    result = piwarden("check", "--deploy", data_dir=tmp_path, **production())

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    assert result.stderr == ""


def test_the_deploy_check_warns_when_the_captcha_is_off(tmp_path):
    result = piwarden("check", "--deploy", data_dir=tmp_path, **production(PIWARDEN_CAPTCHA="off"))

    assert result.returncode == 0
    output = result.stdout + result.stderr
    assert "(piwarden.W001) PIWARDEN_CAPTCHA=off" in output
    assert "1 issue" in output


def test_the_deploy_check_refuses_the_captcha_test_mode(tmp_path):
    result = piwarden("check", "--deploy", data_dir=tmp_path, **production(PIWARDEN_CAPTCHA_TEST_MODE="on"))

    assert result.returncode == 1
    assert "(piwarden.E002)" in result.stderr


def test_the_deploy_check_says_the_embedded_file_mailer_sends_nothing(tmp_path):
    settings = production()
    del settings["PIWARDEN_EMAIL"]
    result = piwarden("check", "--deploy", data_dir=tmp_path, **settings)

    output = result.stdout + result.stderr
    assert result.returncode == 0  # a warning: the embedded default is allowed, but told
    assert "(piwarden.W002) PIWARDEN_EMAIL=file" in output


def test_the_generated_secret_key_is_private_and_reused(tmp_path):
    show_key = ("shell", "--no-imports", "-c", "from django.conf import settings; print(settings.SECRET_KEY)")
    key_file = tmp_path / "secret_key"
    assert not key_file.exists()

    first = piwarden(*show_key, data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text(encoding="utf-8").strip()
    assert len(key) >= 50
    assert first.stdout.strip() == key

    second = piwarden(*show_key, data_dir=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == key
    assert key_file.read_text(encoding="utf-8").strip() == key

    # An explicit SECRET_KEY wins and leaves the stored one alone.
    explicit = a_secret_key()
    third = piwarden(*show_key, data_dir=tmp_path, SECRET_KEY=explicit)
    assert third.stdout.strip() == explicit
    assert key_file.read_text(encoding="utf-8").strip() == key


def test_the_secret_key_file_is_private_whatever_the_umask(tmp_path):
    (tmp_path / "fresh").mkdir()
    previous = os.umask(0)
    try:
        key = persistent_secret(tmp_path / "fresh" / "secret_key")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "fresh" / "secret_key").stat().st_mode) == 0o600
    assert persistent_secret(tmp_path / "fresh" / "secret_key") == key


def test_no_secret_key_file_or_directory_is_created_where_there_is_no_data_directory(tmp_path):
    assert persistent_secret(tmp_path / "absent" / "secret_key")
    assert list(tmp_path.iterdir()) == []


def test_secret_key_file_is_honoured(tmp_path):
    mounted = tmp_path / "mounted-secret"
    key = a_secret_key()
    mounted.write_text(key + "\n", encoding="utf-8")
    result = piwarden(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
        data_dir=tmp_path,
        SECRET_KEY_FILE=str(mounted),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key
    assert not (tmp_path / "secret_key").exists()


def test_working_hours_are_read_as_two_times(monkeypatch):
    monkeypatch.setenv("PIWARDEN_ALERT_WORKING_HOURS", " 8:30-17:45 ")
    assert envhours("PIWARDEN_ALERT_WORKING_HOURS", "09:00-18:00") == (datetime.time(8, 30), datetime.time(17, 45))
    monkeypatch.delenv("PIWARDEN_ALERT_WORKING_HOURS")
    assert envhours("PIWARDEN_ALERT_WORKING_HOURS", "09:00-18:00") == (datetime.time(9), datetime.time(18))
