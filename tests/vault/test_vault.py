"""The vault (policy §五.2): AEAD bound to row and field, per-person keys, rotation, shredding, fail-closed.

Personas: 张伟 (zhang.wei@example.com) and 李娜 (li.na@example.com) send consultation
requests through the real form; 王芳 (wang.fang@example.com) arrives in the middle of a
key rotation.  Tests that rotate, break or remove keys work on a key directory of their
own (``own_keys``): the session's keys are shared by every xdist worker of the run.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import tink
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import models
from tink import aead, secret_key_access
from tink.proto import tink_pb2

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import PERSONAL_FIELDS, Inquiry
from piwarden.people.actions import shred_person
from piwarden.people.models import Person
from piwarden.vault import blind, crypto
from piwarden.vault import keys as vault_keys
from piwarden.vault.crypto import CiphertextInvalid, DataKeyDestroyed, forget_cached_keys
from piwarden.vault.fields import associated_data
from piwarden.vault.keys import (
    BLIND_FILE,
    KEK_FILE,
    LocalKeysetProvider,
    VaultUnavailable,
    get_provider,
    reset_provider,
)
from piwarden.vault.models import DataKey, KeyCheck
from tests.conftest import consultation_data

pytestmark = pytest.mark.django_db

ZHANG = {"name": "张伟", "email": "zhang.wei@example.com", "phone": "13800138000", "company": "示例科技有限公司"}
LI = {"name": "李娜", "email": "li.na@example.com", "phone": "13900139000", "company": "北方数据有限公司"}
WANG = {"name": "王芳", "email": "wang.fang@example.com", "phone": "13700137000", "company": "南方能源有限公司"}

# Tink's TINK output prefix (one version byte 0x01, the 4-byte key id) + AES-GCM's 12-byte IV and 16-byte tag.
TINK_PREFIX = 5
AES_GCM_OVERHEAD = TINK_PREFIX + 12 + 16


# -- helpers -------------------------------------------------------------------------


def sent(submit: Any, persona: dict[str, str], **overrides: Any) -> Inquiry:
    """Submit ``persona``'s request through the real form; return it fresh from the database."""
    response = submit(**{**persona, **overrides})
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:500]
    reference = parse_qs(urlsplit(response["Location"]).query)["ref"][0]
    return Inquiry.objects.get(reference=reference)


def fresh(inquiry: Inquiry) -> Inquiry:
    """The row as another request would see it: no cached keys, no cached plaintext."""
    forget_cached_keys()
    return Inquiry.objects.get(pk=inquiry.pk)


def raw(inquiry: Inquiry, field: str) -> bytes:
    """The stored ciphertext of one field, read past the descriptor."""
    value = Inquiry.objects.filter(pk=inquiry.pk).values_list(field, flat=True).get()
    assert value is not None
    return bytes(value)


def ad(inquiry: Inquiry, field: str) -> bytes:
    model_field = Inquiry._meta.get_field(field)
    assert isinstance(model_field, models.Field)
    return associated_data(inquiry, model_field)


def data_keyset_id(key: DataKey) -> int:
    """The key id inside a person's data keyset (unwrapped with the KEK, as the vault does)."""
    handle = tink.proto_keyset_format.parse_encrypted(bytes(key.wrapped), get_provider().kek(), crypto._wrap_ad(key.id))
    return int(handle.keyset_info().primary_key_id)


def wrapping_kek_id(wrapped: bytes) -> int:
    """The KEK key id in a wrapped data key (an EncryptedKeyset whose ciphertext has the Tink prefix)."""
    encrypted = tink_pb2.EncryptedKeyset()
    encrypted.ParseFromString(wrapped)
    assert encrypted.encrypted_keyset[0] == 0x01
    return int.from_bytes(encrypted.encrypted_keyset[1:TINK_PREFIX], "big")


def kek_file_key_ids(directory: Path) -> tuple[int, list[int]]:
    handle = tink.json_proto_keyset_format.parse((directory / KEK_FILE).read_text(), secret_key_access.TOKEN)
    info = handle.keyset_info()
    return int(info.primary_key_id), [int(k.key_id) for k in info.key_info]


def retire_kek_key(directory: Path, key_id: int) -> None:
    """Remove one key from the KEK keyset file (what an operator does once a rotation has finished)."""
    path = directory / KEK_FILE
    handle = tink.json_proto_keyset_format.parse(path.read_text(), secret_key_access.TOKEN)
    keyset = tink_pb2.Keyset()
    keyset.ParseFromString(tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
    kept = [k for k in keyset.key if k.key_id != key_id]
    assert len(kept) == len(keyset.key) - 1
    del keyset.key[:]
    keyset.key.extend(kept)
    smaller = tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)
    path.write_text(tink.json_proto_keyset_format.serialize(smaller, secret_key_access.TOKEN))


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (Inquiry, Person, ConsentRecord, AuditEvent, DataKey)}


@pytest.fixture
def own_keys(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Point PIWARDEN_KEYS at a directory of this test's own (created by nobody yet)."""
    directory = tmp_path / "keys"
    settings.PIWARDEN_KEYS = f"file:{directory}"
    reset_provider()
    forget_cached_keys()
    yield directory
    reset_provider()
    forget_cached_keys()


@pytest.fixture
def initialised_keys(own_keys: Path) -> Path:
    out = io.StringIO()
    call_command("keys", "init", stdout=out)
    assert "Created keysets" in out.getvalue()
    return own_keys


# -- AEAD: a ciphertext belongs to one row, one field, one person --------------------------------


@pytest.mark.duty("SEC-01")
def test_a_ciphertext_copied_onto_another_row_does_not_decrypt(submit):
    first = sent(submit, ZHANG)
    second = sent(submit, ZHANG, name="张伟伟")  # same person, same data key: only the row differs
    assert first.data_key_id == second.data_key_id
    Inquiry.objects.filter(pk=second.pk).update(name=raw(first, "name"))

    moved = fresh(second)
    with pytest.raises(CiphertextInvalid):
        _ = moved.name
    assert fresh(first).name == "张伟"  # the original still reads: the failure is the move


@pytest.mark.duty("SEC-01")
def test_a_ciphertext_copied_onto_another_field_does_not_decrypt(submit):
    inquiry = sent(submit, ZHANG)
    Inquiry.objects.filter(pk=inquiry.pk).update(company=raw(inquiry, "name"))

    moved = fresh(inquiry)
    assert moved.name == "张伟"
    with pytest.raises(CiphertextInvalid):
        _ = moved.company


@pytest.mark.duty("SEC-01")
def test_a_ciphertext_copied_onto_another_persons_row_does_not_decrypt(submit):
    zhang = sent(submit, ZHANG)
    li = sent(submit, LI)
    assert zhang.person_id != li.person_id
    assert zhang.data_key_id != li.data_key_id
    Inquiry.objects.filter(pk=li.pk).update(name=raw(zhang, "name"))

    with pytest.raises(CiphertextInvalid):
        _ = fresh(li).name
    assert fresh(li).email == "li.na@example.com"


@pytest.mark.duty("SEC-01")
def test_another_persons_data_key_cannot_open_a_ciphertext(submit):
    zhang = sent(submit, ZHANG)
    li = sent(submit, LI)
    ciphertext, bound_to = raw(zhang, "name"), ad(zhang, "name")

    # Even with the right associated data, only 张伟's own key opens 张伟's name.
    assert crypto.decrypt(zhang.data_key_id, ciphertext, bound_to) == "张伟"
    with pytest.raises(CiphertextInvalid):
        crypto.decrypt(li.data_key_id, ciphertext, bound_to)


@pytest.mark.duty("SEC-01")
def test_a_wrapped_data_key_copied_onto_another_persons_key_does_not_open(submit):
    zhang = sent(submit, ZHANG)
    li = sent(submit, LI)
    zhang_wrapped = bytes(DataKey.objects.get(pk=zhang.data_key_id).wrapped)
    DataKey.objects.filter(pk=li.data_key_id).update(wrapped=zhang_wrapped)

    # The KEK opens a wrapped key only on the row it was made for.
    with pytest.raises(VaultUnavailable):
        _ = fresh(li).name
    assert fresh(zhang).name == "张伟"


@pytest.mark.duty("SEC-01")
def test_the_ciphertext_carries_the_id_of_the_key_that_made_it(submit):
    zhang = sent(submit, ZHANG)
    li = sent(submit, LI)
    for inquiry in (zhang, li):
        key_id = data_keyset_id(DataKey.objects.get(pk=inquiry.data_key_id))
        for field in PERSONAL_FIELDS:
            ciphertext = raw(inquiry, field)
            plaintext = getattr(fresh(inquiry), field)
            assert ciphertext[0] == 0x01
            assert int.from_bytes(ciphertext[1:TINK_PREFIX], "big") == key_id
            assert len(ciphertext) == len(plaintext.encode()) + AES_GCM_OVERHEAD
            assert plaintext.encode() not in ciphertext
    assert raw(zhang, "name")[:TINK_PREFIX] != raw(li, "name")[:TINK_PREFIX]  # one data key per person


def test_the_wrapped_data_key_names_the_kek_key_that_wrapped_it(submit):
    zhang = sent(submit, ZHANG)
    key = DataKey.objects.get(pk=zhang.data_key_id)
    # kek_key_id drives rotation (which keys still need re-wrapping) and `keys status`.
    assert wrapping_kek_id(bytes(key.wrapped)) == key.kek_key_id == get_provider().kek_primary_id()
    status = io.StringIO()
    call_command("keys", "status", stdout=status)
    assert f"KEK key {key.kek_key_id} (primary): wraps {DataKey.objects.count()} data keys" in status.getvalue()


# -- rotation ---------------------------------------------------------------------------------


@pytest.mark.duty("SEC-01")
def test_rotation_rewraps_every_data_key_and_reads_keep_working(initialised_keys, submit):
    sent_before = [sent(submit, persona) for persona in (ZHANG, LI, WANG)]
    old_primary = get_provider().kek_primary_id()
    assert set(DataKey.objects.values_list("kek_key_id", flat=True)) == {old_primary}

    out, err = io.StringIO(), io.StringIO()
    call_command("keys", "rotate", "--batch-size", "2", stdout=out, stderr=err)

    new_primary = get_provider().kek_primary_id()
    assert new_primary != old_primary
    assert f"New primary KEK key {new_primary}" in out.getvalue()
    assert "Re-wrapped 4 data keys" in out.getvalue()  # three persons' and the month's security-event key
    for key in DataKey.objects.all():
        assert key.kek_key_id == new_primary
        assert wrapping_kek_id(bytes(key.wrapped)) == new_primary

    # Progress on stderr, one step per batch, ending at 100 %.
    progress = err.getvalue()
    steps = re.findall(r"\[[#.]{30}\]\s+(\d+)% (\d+)/(\d+) data keys", progress)
    assert steps == [("0", "0", "4"), ("50", "2", "4"), ("100", "4", "4")]
    assert progress.rstrip("\n").endswith("100% 4/4 data keys")

    # The keyset file keeps the old key (other processes may still hold old wraps) and names the new primary.
    primary_in_file, ids_in_file = kek_file_key_ids(initialised_keys)
    assert primary_in_file == new_primary
    assert set(ids_in_file) == {old_primary, new_primary}

    event = AuditEvent.objects.get(event_type="keys.rotated")
    assert event.extra == {"primary_key_id": new_primary, "rewrapped": 4}
    assert verify_chain() is None
    # The key check is sealed under the new primary with that event, so the old key can be retired.
    assert KeyCheck.objects.get(pk=1).kek_key_id == new_primary

    for inquiry, persona in zip(sent_before, (ZHANG, LI, WANG), strict=True):
        again = fresh(inquiry)
        assert (again.name, again.email, again.company) == (persona["name"], persona["email"], persona["company"])

    # Every data key really moved: with the old KEK key retired, everything still opens.
    retire_kek_key(initialised_keys, old_primary)
    reset_provider()
    assert get_provider().key_ids() == [new_primary]
    for inquiry, persona in zip(sent_before, (ZHANG, LI, WANG), strict=True):
        assert fresh(inquiry).name == persona["name"]


def test_an_interrupted_rotation_keeps_reads_and_writes_working_and_can_be_resumed(initialised_keys, submit):
    zhang = sent(submit, ZHANG)
    li = sent(submit, LI)
    provider = get_provider()
    old_primary = provider.kek_primary_id()

    new_primary = provider.rotate()  # the KEK is rotated, then the job stops before re-wrapping anything
    assert set(DataKey.objects.values_list("kek_key_id", flat=True)) == {old_primary}

    assert fresh(zhang).name == "张伟"
    assert fresh(li).name == "李娜"
    wang = sent(submit, WANG)
    assert DataKey.objects.get(pk=wang.data_key_id).kek_key_id == new_primary
    assert fresh(wang).name == "王芳"

    status = io.StringIO()
    call_command("keys", "status", stdout=status)
    assert f"KEK key {old_primary}: wraps 3 data keys" in status.getvalue()  # and the security-event key
    assert f"KEK key {new_primary} (primary): wraps 1 data keys" in status.getvalue()

    out, err = io.StringIO(), io.StringIO()
    call_command("keys", "rotate", "--resume", stdout=out, stderr=err)
    assert "New primary" not in out.getvalue()  # resuming adds no key
    assert "Re-wrapped 3 data keys" in out.getvalue()
    assert err.getvalue().rstrip("\n").endswith("100% 3/3 data keys")
    assert get_provider().kek_primary_id() == new_primary
    assert sorted(get_provider().key_ids()) == sorted([old_primary, new_primary])
    assert set(DataKey.objects.values_list("kek_key_id", flat=True)) == {new_primary}
    for inquiry, name in ((zhang, "张伟"), (li, "李娜"), (wang, "王芳")):
        assert fresh(inquiry).name == name


def test_a_process_that_loaded_the_keyset_before_a_rotation_still_reads_afterwards(
    initialised_keys, submit, monkeypatch
):
    # Two "processes" on one key directory, each with its own provider.
    stale = LocalKeysetProvider(initialised_keys)
    rotating = LocalKeysetProvider(initialised_keys)
    reset_provider()  # monkeypatch will restore this (None), whatever the fixture order
    monkeypatch.setattr(vault_keys, "_provider", stale)
    zhang = sent(submit, ZHANG)  # the stale process loads the keyset here
    old_primary = stale.kek_primary_id()

    monkeypatch.setattr(vault_keys, "_provider", rotating)
    call_command("keys", "rotate", stdout=io.StringIO(), stderr=io.StringIO())
    li = sent(submit, LI)
    new_primary = rotating.kek_primary_id()
    assert new_primary != old_primary
    assert set(DataKey.objects.values_list("kek_key_id", flat=True)) == {new_primary}

    monkeypatch.setattr(vault_keys, "_provider", stale)
    assert stale.kek_primary_id() == old_primary  # it has not seen the new keyset yet
    assert fresh(zhang).name == "张伟"  # rewrapped under a key it did not know: reload, then open
    assert fresh(li).name == "李娜"
    assert stale.kek_primary_id() == new_primary


# -- crypto-shredding ---------------------------------------------------------------------------


def test_shredding_a_person_makes_their_data_unreadable_everywhere(submit):
    zhang = sent(submit, ZHANG)
    li = sent(submit, LI)
    person = zhang.person
    assert zhang.name == "张伟"  # the unwrapped key is now in this process's cache
    ciphertexts = {field: raw(zhang, field) for field in PERSONAL_FIELDS}
    wrapped_copy = bytes(person.data_key.wrapped)  # e.g. an old backup of the key table

    shred_person(person, reason="erasure request from the person")

    # Without forgetting cached keys: shredding must evict them itself.
    after = Inquiry.objects.get(pk=zhang.pk)
    assert {field: getattr(after, field) for field in PERSONAL_FIELDS} == dict.fromkeys(PERSONAL_FIELDS)
    assert {field: raw(zhang, field) for field in PERSONAL_FIELDS} == ciphertexts  # still stored, never readable
    key = DataKey.objects.get(pk=zhang.data_key_id)
    assert bytes(key.wrapped) == b""
    assert key.destroyed_at is not None
    person.refresh_from_db()
    assert person.email_index is None
    assert person.phone_index is None
    assert person.erased_at is not None
    assert not Person.objects.filter(email_index=blind.email_index(ZHANG["email"])).exists()
    event = AuditEvent.objects.get(event_type="person.shredded")
    assert event.person_id == person.pk
    assert event.reason == "erasure request from the person"
    assert verify_chain() is None

    # No code path gives the plaintext back.
    with pytest.raises(DataKeyDestroyed):
        crypto.decrypt(zhang.data_key_id, ciphertexts["name"], ad(zhang, "name"))
    with pytest.raises(DataKeyDestroyed):
        crypto.aead_for(zhang.data_key_id)
    # The pre-shredding copy of the wrapped key does not open as anyone else's key either.
    DataKey.objects.filter(pk=li.data_key_id).update(wrapped=wrapped_copy)
    Inquiry.objects.filter(pk=zhang.pk).update(data_key=li.data_key_id)
    forget_cached_keys()
    with pytest.raises(VaultUnavailable):
        crypto.decrypt(li.data_key_id, ciphertexts["name"], ad(zhang, "name"))
    with pytest.raises(VaultUnavailable):
        _ = fresh(zhang).name
    assert "张伟".encode() not in b"".join(ciphertexts.values())


def test_shredding_twice_changes_nothing_more(submit):
    zhang = sent(submit, ZHANG)
    shred_person(zhang.person, reason="first")
    shred_person(zhang.person, reason="second")
    assert list(AuditEvent.objects.filter(event_type="person.shredded").values_list("reason", flat=True)) == ["first"]


# -- keys missing or broken: fail closed ------------------------------------------------------------


def _no_directory(directory: Path) -> None:
    assert not directory.exists()


def _kek_missing(directory: Path) -> None:
    (directory / KEK_FILE).unlink()


def _blind_missing(directory: Path) -> None:
    (directory / BLIND_FILE).unlink()


def _kek_corrupt(directory: Path) -> None:
    (directory / KEK_FILE).write_text('{"primaryKeyId": 12, "key": [{"keyData": ')


def _blind_corrupt(directory: Path) -> None:
    path = directory / BLIND_FILE
    path.write_text(path.read_text()[:40])


def _kek_empty(directory: Path) -> None:
    (directory / KEK_FILE).write_text("")


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize(
    "breakage", [_no_directory, _kek_missing, _blind_missing, _kek_corrupt, _blind_corrupt, _kek_empty]
)
def test_without_usable_keys_a_consultation_is_refused_with_503_and_nothing_is_stored(own_keys, client, breakage):
    if breakage is not _no_directory:
        assert LocalKeysetProvider(own_keys).initialise()
    breakage(own_keys)
    reset_provider()

    response = client.post("/en/consultation/", _form(ZHANG))

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    body = response.content.decode()
    assert "Service temporarily unavailable" in body
    assert "Nothing you sent was stored" in body
    assert "张伟" not in body
    assert response["Retry-After"] == "120"
    assert response["Cache-Control"] == "no-store"
    assert counts() == dict.fromkeys(counts(), 0)


@pytest.mark.duty("SEC-01")
def test_a_wrong_kek_refuses_a_returning_person_and_rolls_back_what_was_written(initialised_keys, submit):
    first = sent(submit, ZHANG)
    before = counts()
    # The KEK file is replaced by another install's (a wrong restore): the blind index still finds
    # 张伟, her consent is recorded, then her data key cannot be unwrapped.
    other = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    (initialised_keys / KEK_FILE).write_text(tink.json_proto_keyset_format.serialize(other, secret_key_access.TOKEN))
    reset_provider()

    response = submit(**{**ZHANG, "company": "另一家公司"})

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert counts() == before
    assert verify_chain() is None
    with pytest.raises(VaultUnavailable):
        _ = fresh(first).name  # never garbage, never a silent None


def test_keys_status_without_keys_is_a_clear_command_error(own_keys):
    with pytest.raises(CommandError) as failure:
        call_command("keys", "status", stdout=io.StringIO())
    message = str(failure.value)
    assert str(own_keys / KEK_FILE) in message
    assert "missing" in message
    assert "piwarden keys init" in message


def test_keys_init_never_replaces_an_existing_keyset(initialised_keys):
    before = (initialised_keys / KEK_FILE).read_bytes()
    out = io.StringIO()
    call_command("keys", "init", stdout=out)
    assert "already present" in out.getvalue()
    assert (initialised_keys / KEK_FILE).read_bytes() == before
    assert (initialised_keys / KEK_FILE).stat().st_mode & 0o777 == 0o600


def _form(persona: dict[str, str]) -> dict[str, str]:
    return consultation_data(**persona, submission_token=str(uuid.uuid4()))


# -- blind indexes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "zhang.wei@example.com",
        "Zhang.Wei@Example.COM",
        "  zhang.wei@example.com\t",
        "ｚｈａｎｇ．ｗｅｉ＠ｅｘａｍｐｌｅ．ｃｏｍ",
    ],
)
def test_variants_of_one_email_give_one_index(variant):
    assert blind.email_index(variant) == blind.email_index("zhang.wei@example.com")


@pytest.mark.parametrize(
    "variant", ["13800138000", "138 0013 8000", "+86 138-0013-8000", "+8613800138000", "１３８００１３８０００"]
)
def test_variants_of_one_phone_number_give_one_index(variant):
    assert blind.phone_index(variant) == blind.phone_index("13800138000")


def test_different_people_get_different_indexes():
    assert blind.email_index("zhang.wei@example.com") != blind.email_index("li.na@example.com")
    assert blind.phone_index("13800138000") != blind.phone_index("13900139000")


def test_an_email_and_a_phone_with_the_same_string_do_not_share_an_index():
    same = "+8613800138000"
    assert blind.blind_index("email", same) != blind.blind_index("phone", same)


def test_the_index_is_keyed_not_a_plain_hash(settings, tmp_path):
    index = blind.email_index("zhang.wei@example.com")
    assert re.fullmatch(r"[0-9a-f]{64}", index)
    for guess in (b"zhang.wei@example.com", b"email\x00zhang.wei@example.com"):
        assert index not in {hashlib.sha256(guess).hexdigest(), hashlib.sha3_256(guess).hexdigest()}
    # Another install's PRF key gives an unrelated digest: nothing is testable without the key.
    settings.PIWARDEN_KEYS = f"file:{tmp_path / 'keys'}"
    reset_provider()
    try:
        assert get_provider().initialise()  # type: ignore[attr-defined]
        assert blind.email_index("zhang.wei@example.com") != index
    finally:
        reset_provider()
