"""The embedded outbox keeps mail sealed: an address never lies in a file in plaintext."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import tink
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.core.management.base import CommandError

from piwarden.vault.outbox import SUFFIX, SealedFileBackend, open_sealed


def test_a_sealed_message_holds_no_plaintext_and_opens_with_the_kek(tmp_path: Path):
    backend = SealedFileBackend(file_path=str(tmp_path))
    message = EmailMessage("收到您的咨询 ABC", "尊敬的客户，您好", to=["canary-outbox@example.com"])
    assert backend.send_messages([message]) == 1
    [path] = tmp_path.glob(f"*{SUFFIX}")
    blob = path.read_bytes()
    assert b"canary-outbox" not in blob
    assert "尊敬".encode() not in blob
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"canary-outbox@example.com" in open_sealed(path)


def test_a_sealed_message_renamed_does_not_open(tmp_path: Path):
    backend = SealedFileBackend(file_path=str(tmp_path))
    backend.send_messages([EmailMessage("s", "b", to=["x@example.com"])])
    [path] = tmp_path.glob(f"*{SUFFIX}")
    moved = path.with_name("20000101-000000-000000000000" + SUFFIX)
    path.rename(moved)
    with pytest.raises(tink.TinkError):
        open_sealed(moved)


def test_the_outbox_command_lists_and_shows(settings, tmp_path: Path):
    settings.PIWARDEN_OUTBOX_DIR = tmp_path
    SealedFileBackend(file_path=str(tmp_path)).send_messages(
        [EmailMessage("Reference XYZ", "hello", to=["someone@example.com"])]
    )
    out = io.StringIO()
    call_command("outbox", "list", stdout=out)
    assert "Reference XYZ" in out.getvalue()
    assert "1 message(s)" in out.getvalue()
    name = next(tmp_path.glob(f"*{SUFFIX}")).name
    out = io.StringIO()
    call_command("outbox", "show", name, stdout=out)
    assert "someone@example.com" in out.getvalue()
    with pytest.raises(CommandError, match="No message"):
        call_command("outbox", "show", "nope.eml.sealed")
