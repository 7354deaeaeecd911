"""The embedded outbox keeps mail sealed: an address never lies in a file in plaintext."""

from __future__ import annotations

import datetime
import io
from email import message_from_bytes
from email import policy as email_policy
from http import HTTPStatus
from pathlib import Path

import pytest
import tink
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from piwarden.audit.models import AuditEvent
from piwarden.people.actions import find_or_create_person, shred_person
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.vault import blind
from piwarden.vault.outbox import (
    MAX_RECIPIENTS,
    SUFFIX,
    TAG_CHARS,
    SealedFileBackend,
    TooManyRecipients,
    open_sealed,
    tag_for_address,
)
from tests.conftest import consultation_data


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


@pytest.mark.django_db
@pytest.mark.duty("SEC-02")
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
    # Each opening of people's mail by the operator is on the record: what was opened, how.
    readings = [e.extra for e in AuditEvent.objects.filter(event_type="outbox.read").order_by("id")]
    assert readings == [
        {"action": "list", "messages": 1, "names": [name]},
        {"action": "show", "messages": 1, "names": [name]},
    ]
    with pytest.raises(CommandError, match="No message"):
        call_command("outbox", "show", "nope.eml.sealed")


# -- kept only as long as declared ------------------------------------------------------------------


def seal_at(monkeypatch: pytest.MonkeyPatch, directory: Path, when: datetime.datetime, subject: str) -> None:
    """Seal a message as the backend would have at ``when`` (the clock is Django's, not ours)."""
    with monkeypatch.context() as m:
        m.setattr(timezone, "now", lambda: when)
        SealedFileBackend(file_path=str(directory)).send_messages(
            [EmailMessage(subject, "body", to=["wang.fang@example.com"])]
        )


def listed() -> str:
    out = io.StringIO()
    call_command("outbox", "list", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.duty("RET-01")
def test_prune_deletes_the_copies_older_than_the_declared_retention(settings, tmp_path: Path, monkeypatch):
    settings.PIWARDEN_OUTBOX_DIR = tmp_path
    category = load_declaration().category_of_store("vault:outbox")
    assert category is not None
    kept_for = datetime.timedelta(days=category.retention_days)
    now = timezone.now()
    seal_at(monkeypatch, tmp_path, now - kept_for - datetime.timedelta(minutes=1), "Expired ABC")
    seal_at(monkeypatch, tmp_path, now - kept_for + datetime.timedelta(hours=1), "Young DEF")
    seal_at(monkeypatch, tmp_path, now, "Fresh GHI")
    assert "3 message(s)" in listed()

    out = io.StringIO()
    call_command("outbox", "prune", "--dry-run", stdout=out)
    assert f"1 sealed message(s) older than {category.retention_days} days" in out.getvalue()
    assert "3 message(s)" in listed()

    out = io.StringIO()
    call_command("outbox", "prune", stdout=out)
    assert f"Deleted 1 sealed message(s) older than {category.retention_days} days" in out.getvalue()
    remaining = listed()
    assert "2 message(s)" in remaining
    assert "Expired ABC" not in remaining
    assert "Young DEF" in remaining
    assert "Fresh GHI" in remaining
    [event] = AuditEvent.objects.filter(event_type="outbox.pruned")
    assert event.extra == {"deleted": 1, "retention_days": category.retention_days}

    call_command("outbox", "prune", stdout=io.StringIO())  # nothing left to delete: nothing recorded
    assert AuditEvent.objects.filter(event_type="outbox.pruned").count() == 1


def test_the_prune_rule_is_documented_in_the_commands_help(capsys):
    with pytest.raises(SystemExit):
        call_command("outbox", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "deletes every sealed message sent longer ago than the retention_days" in text
    assert "outbox_copies" in text


# -- a person's messages go when the person is shredded --------------------------------------------


@pytest.fixture
def sealed_outbox(settings, tmp_path: Path) -> Path:
    """The embedded default's mailer (the test runner swaps in locmem), in a directory of this test."""
    directory = tmp_path / "outbox"
    settings.PIWARDEN_OUTBOX_DIR = directory
    settings.MAILERS = {
        "default": {"BACKEND": "piwarden.vault.outbox.SealedFileBackend", "OPTIONS": {"file_path": str(directory)}}
    }
    return directory


def recipients_by_file(directory: Path) -> dict[str, str]:
    found = {}
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        message = message_from_bytes(open_sealed(path), policy=email_policy.default)
        found[path.name] = str(message["To"])
    return found


@pytest.mark.django_db(transaction=True)  # the worker closes its connection between tasks
@pytest.mark.duty("RGT-05")
def test_shredding_a_person_deletes_the_sealed_mail_sent_to_them(client, settings, sealed_outbox: Path):
    for data in (
        consultation_data(name="张伟", email="zhang.wei@example.com"),
        consultation_data(name="李娜", email="li.na@example.com", phone="13900139000"),
    ):
        assert client.post("/consultation/", data).status_code == HTTPStatus.FOUND
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)
    sales = settings.PIWARDEN_SALES_EMAIL
    before = recipients_by_file(sealed_outbox)
    assert sorted(before.values()) == sorted(["zhang.wei@example.com", "li.na@example.com", sales, sales])
    assert "4 message(s)" in listed()
    zhang = Person.objects.get(email_index=blind.email_index("zhang.wei@example.com"))
    for name in before:  # the names say nothing a reader could use: no address, no people-table index
        assert "zhang" not in name
        assert zhang.email_index not in name
        assert zhang.email_index[:TAG_CHARS] not in name

    shred_person(zhang, reason="erasure request")

    after = recipients_by_file(sealed_outbox)
    assert sorted(after.values()) == sorted(["li.na@example.com", sales, sales])
    assert set(after) < set(before)  # the others' files are untouched
    remaining = listed()
    assert "3 message(s)" in remaining
    zhang_tag = tag_for_address("zhang.wei@example.com")
    assert all(zhang_tag not in name for name in after)  # nothing of theirs left, not even the tag
    [event] = AuditEvent.objects.filter(event_type="person.shredded", person=zhang)
    assert event.extra == {"outbox_messages_deleted": 1}


@pytest.mark.django_db
def test_a_message_to_several_people_goes_when_any_of_them_is_shredded(sealed_outbox: Path):
    with transaction.atomic():
        zhang = find_or_create_person(email="zhang.wei@example.com")
    backend = SealedFileBackend(file_path=str(sealed_outbox))
    backend.send_messages(
        [
            EmailMessage("to both", "b", to=["Zhang Wei <Zhang.Wei@Example.com>"], cc=["li.na@example.com"]),
            EmailMessage("to li only", "b", to=["li.na@example.com"]),
        ]
    )

    shred_person(zhang, reason="erasure request")

    assert list(recipients_by_file(sealed_outbox).values()) == ["li.na@example.com"]


def test_a_message_to_more_recipients_than_its_name_can_tag_is_refused(tmp_path: Path):
    addresses = [f"person{i}@example.com" for i in range(MAX_RECIPIENTS + 1)]
    with pytest.raises(TooManyRecipients):
        SealedFileBackend(file_path=str(tmp_path)).send_messages([EmailMessage("s", "b", to=addresses)])
    assert list(tmp_path.iterdir()) == []
