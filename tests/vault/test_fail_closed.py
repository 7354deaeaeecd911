"""Keys fail closed (DESIGN invariant 5): never new keys over existing data, never a silent mismatch.

In-process, through ``call_command`` and the test client, on a key directory of each test's
own.  The start-up refusals of real processes (``serve``, gunicorn, other commands, ``check
--deploy``) are in ``test_start_up.py``.

Personas: 张伟 (zhang.wei@example.com) and 李娜 (li.na@example.com) send consultation
requests through the real form; alice is a sales consultant in the staff console.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import tink
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from tink import prf, secret_key_access
from tink.proto import tink_pb2

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.vault import blind
from piwarden.vault.crypto import forget_cached_keys
from piwarden.vault.keycheck import FORCE_FLAG
from piwarden.vault.keys import BLIND_FILE, KEK_FILE, LocalKeysetProvider, get_provider, reset_provider
from piwarden.vault.models import KeyCheck
from tests.conftest import consultation_data, sign_in

pytestmark = pytest.mark.django_db

ZHANG = {"name": "张伟", "email": "zhang.wei@example.com", "phone": "13800138000"}
LI = {"name": "李娜", "email": "li.na@example.com", "phone": "13900139000"}


@pytest.fixture
def keys_dir(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """This test's own key directory, initialised by the real command on an empty database."""
    directory = tmp_path / "keys"
    settings.PIWARDEN_KEYS = f"file:{directory}"
    reset_provider()
    forget_cached_keys()
    out = io.StringIO()
    call_command("keys", "init", stdout=out)
    assert "Created keysets" in out.getvalue()
    yield directory
    reset_provider()
    forget_cached_keys()


def keys_changed() -> None:
    """What a new process would see: nothing cached from the keys that were there before."""
    reset_provider()
    forget_cached_keys()


def move_away(directory: Path) -> Path:
    moved = directory.with_name("keys.moved")
    directory.rename(moved)
    keys_changed()
    return moved


def replace_with_another_installs_keys(directory: Path, *files: str) -> None:
    other = directory.with_name("other-install")
    LocalKeysetProvider(other).initialise()
    for name in files:
        shutil.copyfile(other / name, directory / name)
    keys_changed()


def init(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("keys", "init", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def status() -> str:
    out = io.StringIO()
    call_command("keys", "status", stdout=out)
    return out.getvalue()


def sent(submit: Any, persona: dict[str, str]) -> Person:
    response = submit(**persona)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:500]
    return Person.objects.get(email_index=blind.email_index(persona["email"]))


def one_line(message: str) -> str:
    assert "\n" not in message, message
    return message


# -- keys init: only for an empty installation ------------------------------------------------------------


@pytest.mark.duty("SEC-01")
def test_keys_init_records_which_keys_the_database_is_written_with(keys_dir):
    check = KeyCheck.objects.get()
    assert check.kek_key_id == get_provider().kek_primary_id()
    assert len(check.blind_digest) == 64
    assert b"piwarden" not in bytes(check.sealed)  # the canary is sealed, not stored
    out, _ = init()
    assert f"Keysets already present in {keys_dir}" in out
    assert KeyCheck.objects.get().sealed == check.sealed  # a second init changes nothing


@pytest.mark.duty("SEC-01")
def test_keys_init_refuses_to_create_keys_over_existing_data(keys_dir, submit):
    zhang = sent(submit, ZHANG)
    move_away(keys_dir)

    with pytest.raises(CommandError) as refused:
        init()

    message = one_line(str(refused.value))
    assert f"{keys_dir / KEK_FILE} is missing" in message  # what is missing, where it was looked for
    assert "Restore the keys from your backup" in message  # what to do
    assert FORCE_FLAG in message  # and the only other way, named
    assert not keys_dir.exists()  # nothing was created
    assert KeyCheck.objects.count() == 1
    assert Person.objects.get() == zhang


@pytest.mark.duty("SEC-01")
def test_keys_init_refuses_keys_that_are_not_the_databases(keys_dir, submit):
    sent(submit, ZHANG)
    before = (keys_dir / BLIND_FILE).read_bytes()
    replace_with_another_installs_keys(keys_dir, BLIND_FILE)  # only the blind-index key is another's

    with pytest.raises(CommandError) as refused:
        init()

    message = one_line(str(refused.value))
    assert "not the ones this database was written with" in message
    assert "blind-index key" in message
    assert (keys_dir / BLIND_FILE).read_bytes() != before  # an init never rewrites a keyset file either


@pytest.mark.duty("SEC-01")
def test_new_keys_over_existing_data_take_the_scary_flag_and_are_audited(keys_dir, submit):
    zhang = sent(submit, ZHANG)
    sent(submit, LI)
    old_check = KeyCheck.objects.get()
    move_away(keys_dir)

    out, err = init(FORCE_FLAG)

    assert f"Created keysets in {keys_dir}" in out
    assert "3 data keys written with the old keys can no longer be unwrapped" in err  # with the security-event key
    event = AuditEvent.objects.get(event_type="keys.replaced")
    assert event.extra["unreadable_data_keys"] == 3
    assert event.extra["location"] == f"file:{keys_dir}"
    assert verify_chain() is None
    new_check = KeyCheck.objects.get()
    assert new_check.kek_key_id == get_provider().kek_primary_id() != old_check.kek_key_id
    assert new_check.written_off_before is not None  # what the flag wrote off stops nothing from starting
    # The new keys now pass every check, and the old data is what the flag said: unreadable.
    assert init()[0].startswith("Keysets already present")
    with pytest.raises(CommandError, match="3 of 3 data keys cannot be unwrapped"):
        status()
    assert Person.objects.filter(pk=zhang.pk, email_index=blind.email_index(ZHANG["email"])).count() == 0


def test_the_scary_flag_on_an_empty_installation_changes_nothing(keys_dir):
    out, _ = init(FORCE_FLAG)
    assert out.startswith("Keysets already present")
    assert not AuditEvent.objects.filter(event_type="keys.replaced").exists()


# -- a database written before the key check existed -----------------------------------------------------


@pytest.mark.duty("SEC-01")
def test_an_existing_deployment_without_a_check_row_is_verified_by_its_data_keys(keys_dir, submit):
    sent(submit, ZHANG)
    KeyCheck.objects.all().delete()  # as written by an earlier version

    assert init()[0].startswith("Keysets already present")  # the right keys: the row is recorded now
    assert KeyCheck.objects.get().kek_key_id == get_provider().kek_primary_id()

    KeyCheck.objects.all().delete()
    replace_with_another_installs_keys(keys_dir, KEK_FILE, BLIND_FILE)
    with pytest.raises(CommandError, match="does not unwrap the database's data keys"):
        init()
    assert not KeyCheck.objects.exists()  # the wrong keys are never recorded as the database's


# -- keys status: counts what cannot be unwrapped, and says so in its exit status -------------------------------


@pytest.mark.duty("SEC-01")
def test_keys_status_counts_data_keys_no_kek_can_unwrap_and_fails(keys_dir, submit):
    sent(submit, ZHANG)
    sent(submit, LI)
    assert "Data keys the current KEKs cannot unwrap: 0 of 3" in status()
    old_primary = get_provider().kek_primary_id()
    replace_with_another_installs_keys(keys_dir, KEK_FILE)

    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("keys", "status", stdout=out)

    assert f"KEK key {old_primary} (not in the keyset): wraps 3 data keys" in out.getvalue()
    assert "Data keys the current KEKs cannot unwrap: 3 of 3" in out.getvalue()
    assert "Key check: the key-encryption key does not open the database's key check" in out.getvalue()
    assert "not the ones this database was written with" in one_line(str(failed.value))


@pytest.mark.duty("SEC-01")
def test_keys_status_fails_when_only_the_blind_index_key_is_another(keys_dir, submit):
    sent(submit, ZHANG)
    replace_with_another_installs_keys(keys_dir, BLIND_FILE)

    with pytest.raises(CommandError, match="blind-index key"):
        status()


def test_a_rotation_reseals_the_key_check_so_the_old_kek_can_be_retired(keys_dir, submit):
    zhang = sent(submit, ZHANG)
    old_primary = get_provider().kek_primary_id()
    call_command("keys", "rotate", stdout=io.StringIO(), stderr=io.StringIO())
    new_primary = get_provider().kek_primary_id()
    assert KeyCheck.objects.get().kek_key_id == new_primary

    # Retire the old key from the keyset file, as an operator does once the rotation is done.
    path = keys_dir / KEK_FILE
    handle = tink.json_proto_keyset_format.parse(path.read_text(), secret_key_access.TOKEN)
    keyset = tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
    parsed = tink_pb2.Keyset()
    parsed.ParseFromString(keyset)
    kept = [k for k in parsed.key if k.key_id != old_primary]
    del parsed.key[:]
    parsed.key.extend(kept)
    smaller = tink.proto_keyset_format.parse(parsed.SerializeToString(), secret_key_access.TOKEN)
    path.write_text(tink.json_proto_keyset_format.serialize(smaller, secret_key_access.TOKEN))
    keys_changed()

    assert "Key check: these are the keys the database was written with" in status()
    assert Inquiry.objects.get(person=zhang).name == "张伟"


def test_the_key_check_tells_the_blind_index_key_apart_from_any_other_prf_key(keys_dir):
    # Another PRF key of the same kind: a fresh HMAC-SHA256 keyset that is not the installation's.
    other = tink.new_keyset_handle(prf.prf_key_templates.HMAC_SHA256)
    (keys_dir / BLIND_FILE).write_text(tink.json_proto_keyset_format.serialize(other, secret_key_access.TOKEN))
    keys_changed()
    with pytest.raises(CommandError, match="blind-index key"):
        init()


# -- the staff console: 503 in staff wording -------------------------------------------------------------


@pytest.mark.duty("SEC-01")
def test_a_staff_page_that_needs_a_missing_key_answers_503_for_staff(keys_dir, submit, alice, assign):
    sent(submit, ZHANG)
    inquiry = Inquiry.objects.get()
    assign(inquiry.reference, alice)  # sales see only the requests assigned to them
    staff = Client()
    assert sign_in(staff, alice).status_code == HTTPStatus.FOUND
    (keys_dir / KEK_FILE).unlink()
    keys_changed()

    response = staff.post(
        f"/backoffice/inquiries/{inquiry.reference}/",
        {"purpose": "respond_inquiry", "field_names": ["name", "email"], "reason": "Calling back about the quote"},
    )

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    body = response.content.decode()
    assert "密钥加密密钥当前不可用" in body
    assert "请通知运维人员" in body
    assert "The key-encryption keys are unavailable" in body
    assert "Tell the operator" in body
    assert "Nothing you sent was stored" not in body  # the visitor's wording is for visitors
    assert "您提交的任何信息都没有被保存" not in body
    assert "张伟" not in body
    assert response["Retry-After"] == "120"
    assert response["Cache-Control"] == "no-store"
    assert not AuditEvent.objects.filter(event_type="pii.revealed").exists()


def test_a_visitor_page_that_needs_a_missing_key_keeps_the_visitors_wording(keys_dir, client):
    (keys_dir / KEK_FILE).unlink()
    keys_changed()
    response = client.post("/en/consultation/", consultation_data(**ZHANG))

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert "Nothing you sent was stored" in response.content.decode()
    assert "Tell the operator" not in response.content.decode()
