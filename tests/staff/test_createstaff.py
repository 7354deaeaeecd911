"""``piwarden createstaff`` as an operator meets it: no terminal, input ending early, weak passwords."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import subprocess
import termios

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from piwarden.audit.models import AuditEvent
from piwarden.staff.models import Authenticator
from tests.commands import PIWARDEN, command_env, piwarden

CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


def nothing_was_created(username: str) -> bool:
    return (
        not User.objects.filter(username=username).exists()
        and not Authenticator.objects.exists()
        and not AuditEvent.objects.filter(event_type="staff.created").exists()
    )


@pytest.mark.django_db(transaction=True)
def test_without_a_terminal_it_says_what_to_do_in_one_line():
    result = piwarden("createstaff", "nadia", "--role", "sales", LANG="en_US.UTF-8")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "--password-file" in lines[0]
    assert "terminal" in lines[0]
    assert nothing_was_created("nadia")


def _read_until(fd: int, marker: bytes) -> bytes:
    seen = b""
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            pytest.fail(f"no {marker!r} prompt; the command wrote {seen!r}")
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("lang", "prompt"), [("en_US.UTF-8", "Password: "), ("zh_CN.UTF-8", "密码：")])
def test_input_ending_at_the_password_prompt_says_what_to_do_in_one_line(lang, prompt):
    controller, terminal = pty.openpty()

    def take_the_terminal() -> None:  # runs in the child, after setsid: the pty becomes /dev/tty
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(  # noqa: S603  # our own command, fixed argv
        [PIWARDEN, "createstaff", "nadia", "--role", "sales"],
        stdin=terminal,
        stdout=terminal,
        stderr=subprocess.PIPE,
        env=command_env(LANG=lang),
        start_new_session=True,
        preexec_fn=take_the_terminal,  # noqa: PLW1509  # single-threaded test process; needed for TIOCSCTTY
    )
    os.close(terminal)
    try:
        _read_until(controller, prompt.encode())
        os.write(controller, b"\x04")  # Ctrl-D: end of input
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        os.close(controller)
    text = stderr.decode()
    assert process.returncode == 1
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    assert "--password-file" in lines[0]
    message = lines[0].removeprefix("CommandError: ").replace("--password-file", "")
    if lang.startswith("zh"):
        assert "未创建任何内容" in message
        assert not LATIN_WORD.search(message.replace("FILE", "")), message
    else:
        assert "nothing was created" in message
        assert not CJK.search(message), message
    assert nothing_was_created("nadia")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "weak"),
    [("nadia", "password"), ("nadia", "short1!"), ("nadia", "12345678901234"), ("frankenstein", "frankenstein1")],
)
def test_password_errors_are_in_one_language(tmp_path, monkeypatch, username, weak):
    secret = tmp_path / "pw"
    secret.write_text(weak)
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)

    monkeypatch.setenv("LANG", "en_US.UTF-8")
    with pytest.raises(CommandError) as english:
        call_command("createstaff", username, role="sales", password_file=secret)
    assert str(english.value).startswith("Password rejected: ")
    assert not CJK.search(str(english.value)), english.value

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    with pytest.raises(CommandError) as chinese:
        call_command("createstaff", username, role="sales", password_file=secret)
    assert str(chinese.value).startswith("密码未被接受：")
    assert CJK.search(str(chinese.value))
    # Only the username may be Latin (the similarity message names the field, not its value).
    assert not LATIN_WORD.search(str(chinese.value)), chinese.value
    assert nothing_was_created(username)


@pytest.mark.django_db
def test_the_password_file_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    secret = tmp_path / "pw"
    secret.write_text("a long and uncommon passphrase 7\n")
    call_command("createstaff", "nadia", role="sales", password_file=secret, stdout=io.StringIO())
    user = User.objects.get(username="nadia")
    assert user.check_password("a long and uncommon passphrase 7")
    assert Authenticator.objects.get(user=user).confirmed
