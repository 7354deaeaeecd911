"""Checkpoints: ``verify`` checks a run of sealed events with one hash of their stored columns,
taken by the sealer once it had checked them one by one.  They only speed it up: a run without
its checkpoint is checked event by event, a run that was rewritten is walked to name the event,
and a chain rewritten with every hash recomputed, which the events alone cannot tell, no longer
matches its checkpoint."""

from __future__ import annotations

import base64
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from piwarden.audit import chain, signing
from piwarden.audit.actions import export_missing, rotate_signing_key
from piwarden.audit.chain import ExportUnreadable, checkpoint, seal, verify, verify_exported
from piwarden.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from piwarden.audit.scan import CHECKPOINT_BROKEN
from piwarden.vault.keys import create_signing_key
from tests.audit.conftest import drop_triggers
from tests.audit.test_scan import CHUNK, EVENTS, change_content, every_way, hash_of, record

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def log() -> dict[int, int]:
    """``EVENTS`` sealed events, seq -> id, no checkpoint yet."""
    record(EVENTS)
    assert seal() == EVENTS
    return dict(AuditEvent.objects.exclude(seq=None).values_list("seq", "id"))


def runs() -> list[tuple[int, int]]:
    return list(AuditCheckpoint.objects.values_list("first_seq", "last_seq"))


def rehash_from(log: dict[int, int], s: int) -> None:
    """What someone who can write the database does after changing event ``s``: every hash from
    it on recomputed, each prev_hash following, the head moved: each event follows from its
    neighbours and its own columns."""
    for seq in range(s, EVENTS + 1):
        pk = log[seq]
        if seq > s:
            AuditEvent.objects.filter(pk=pk).update(prev_hash=AuditEvent.objects.get(seq=seq - 1).hash)
        AuditEvent.objects.filter(pk=pk).update(hash=hash_of(pk))
    AuditChainHead.objects.filter(pk=1).update(hash=AuditEvent.objects.get(seq=EVENTS).hash)


def test_the_sealer_takes_a_checkpoint_every_span_of_sealed_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain, "CHECKPOINT_SPAN", CHUNK)
    record(EVENTS)
    assert seal() == EVENTS
    assert runs() == [(1, 7), (8, 14), (15, 21), (22, 28)]
    record(5)
    seal()  # 35 sealed: one more run
    assert runs()[-1] == (29, 35)
    assert checkpoint() == 0  # nothing new: none taken twice
    assert every_way() is None  # each digest is the one verify computes, or it would name the run


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize("s", [3, 8, 17])
@pytest.mark.usefixtures("triggers_dropped")
def test_a_chain_rewritten_with_its_hashes_recomputed_is_caught_by_its_checkpoint(log: dict[int, int], s: int) -> None:
    checkpoint(span=CHUNK)
    change_content(log, s)
    rehash_from(log, s)
    first = (s - 1) // CHUNK * CHUNK + 1  # the first event of the run holding s
    broken = every_way()
    assert broken is not None
    assert (broken.event_id, broken.seq, broken.why) == (log[first], first, CHECKPOINT_BROKEN)
    # Without its checkpoints, the same log passes: every event follows from its neighbours.
    AuditCheckpoint.objects.all().delete()
    assert every_way() is None


@pytest.mark.duty("SEC-02")
@pytest.mark.usefixtures("triggers_dropped")
def test_a_deleted_checkpoint_leaves_its_run_checked_event_by_event(log: dict[int, int]) -> None:
    checkpoint(span=CHUNK)
    AuditCheckpoint.objects.filter(first_seq=8).delete()
    assert every_way() is None
    change_content(log, 10)
    broken = every_way()
    assert broken is not None
    assert (broken.event_id, broken.seq) == (log[10], 10)
    assert "rewritten" in broken.why


@pytest.mark.duty("SEC-02")
@pytest.mark.usefixtures("triggers_dropped")
def test_an_altered_checkpoint_is_named_at_its_first_event(log: dict[int, int]) -> None:
    checkpoint(span=CHUNK)
    AuditCheckpoint.objects.filter(first_seq=15).update(digest="0" * 64)
    broken = verify(chunk=CHUNK, workers=1)
    assert broken is not None
    assert (broken.event_id, broken.seq, broken.why) == (log[15], 15, CHECKPOINT_BROKEN)


@pytest.mark.duty("SEC-02")
@pytest.mark.usefixtures("triggers_dropped")
def test_a_run_that_does_not_verify_gets_no_checkpoint(log: dict[int, int], caplog: pytest.LogCaptureFixture) -> None:
    change_content(log, 10)
    with caplog.at_level(logging.ERROR, logger="piwarden.audit"):
        assert checkpoint(span=CHUNK) == 1  # 1-7 only: 8-14 does not verify, and the runs after wait
    assert runs() == [(1, 7)]
    assert "seq 8 to 14 do not verify" in caplog.text
    broken = every_way()
    assert broken is not None
    assert (broken.event_id, broken.seq) == (log[10], 10)


def test_checkpoints_that_overlap_or_pass_the_end_are_not_used(log: dict[int, int]) -> None:
    checkpoint(span=CHUNK)
    AuditCheckpoint.objects.create(first_seq=5, last_seq=12, digest="0" * 64)  # overlaps 1-7 and 8-14
    AuditCheckpoint.objects.create(first_seq=29, last_seq=40, digest="0" * 64)  # past the last event
    assert every_way() is None


# -- signed, and exported where the database's users cannot rewrite them ----------------------


@pytest.fixture
def exported(settings: Any, tmp_path: Path) -> Path:
    path = tmp_path / "checkpoints.jsonl"
    settings.PIWARDEN_AUDIT_CHECKPOINTS = path
    return path


def test_each_checkpoint_is_signed_and_exported_with_a_key_kept_outside_the_database(
    log: dict[int, int], exported: Path
) -> None:
    assert checkpoint(span=CHUNK) == 4
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [(x["first_seq"], x["last_seq"]) for x in lines] == runs()
    public = signing.Verifier(signing.directory() / signing.PUBLIC_FILE)
    for x in lines:
        assert public.holds(x["signature"], x["first_seq"], x["last_seq"], x["digest"], x["last_hash"])
        assert x["last_hash"] == AuditEvent.objects.get(seq=x["last_seq"]).hash
    assert not public.holds(lines[0]["signature"], 1, 7, lines[1]["digest"], lines[0]["last_hash"])
    assert verify_exported(exported) is None
    assert export_missing(exported) == 0  # every one is there already
    exported.unlink()
    assert export_missing(exported) == 4  # a new file gets them all


@pytest.mark.duty("SEC-02")
@pytest.mark.usefixtures("triggers_dropped")
def test_a_checkpoint_whose_signature_does_not_hold_is_named(log: dict[int, int], exported: Path) -> None:
    checkpoint(span=CHUNK)
    other = AuditCheckpoint.objects.get(first_seq=1).signature
    AuditCheckpoint.objects.filter(first_seq=8).update(signature=other)  # a real signature, of another run
    broken = verify(chunk=CHUNK, workers=1)
    assert broken is not None
    assert (broken.event_id, broken.seq, broken.why) == (log[8], 8, CHECKPOINT_BROKEN)


@pytest.mark.duty("SEC-02")
@pytest.mark.usefixtures("triggers_dropped")
def test_a_log_rewritten_with_hashes_and_checkpoints_recomputed_fails_against_the_export(
    log: dict[int, int], exported: Path
) -> None:
    """Someone who can write the database but holds neither the signing key nor the export file
    rewrites event 10, every hash after it and the head, and deletes the checkpoints they cannot
    sign again: the database alone verifies; the export does not."""
    checkpoint(span=CHUNK)
    change_content(log, 10)
    rehash_from(log, 10)
    AuditCheckpoint.objects.all().delete()
    assert every_way() is None
    broken = verify_exported(exported)
    assert broken is not None
    assert (broken.event_id, broken.seq) == (log[8], 8)
    assert "no longer match the checkpoint exported" in broken.why


@pytest.mark.duty("SEC-02")
@pytest.mark.usefixtures("triggers_dropped")
def test_a_log_cut_short_with_its_head_moved_back_fails_against_the_export(log: dict[int, int], exported: Path) -> None:
    checkpoint(span=CHUNK)
    AuditEvent.objects.filter(seq__gt=12).delete()
    AuditChainHead.objects.filter(pk=1).update(seq=12, hash=AuditEvent.objects.get(seq=12).hash)
    AuditCheckpoint.objects.filter(first_seq__gt=12).delete()
    assert verify(chunk=CHUNK, workers=1) is None  # what is left is a valid log
    broken = verify_exported(exported)
    assert broken is not None
    assert (broken.event_id, broken.seq) == (log[12], 12)
    assert "truncated" in broken.why


def test_an_export_line_that_was_edited_is_refused(log: dict[int, int], exported: Path) -> None:
    checkpoint(span=CHUNK)
    lines = exported.read_text().splitlines()
    forged = json.loads(lines[1]) | {"digest": "0" * 64}
    exported.write_text("\n".join([lines[0], json.dumps(forged), *lines[2:]]) + "\n")
    with pytest.raises(ExportUnreadable, match="line 2: its signature does not verify"):
        verify_exported(exported)


def test_after_a_rotation_new_checkpoints_use_the_new_key_and_old_ones_still_verify(
    log: dict[int, int], exported: Path, settings: Any, tmp_path: Path
) -> None:
    # A keys directory of this test's own (the suite's is shared between workers).
    settings.PIWARDEN_KEYS = f"file:{tmp_path / 'keys'}"
    assert create_signing_key(tmp_path / "keys")
    signing.forget()
    checkpoint(span=CHUNK, most=2)
    key_id = rotate_signing_key()
    assert AuditEvent.objects.filter(event_type="audit.signing_key_rotated", extra__key_id=key_id).exists()
    checkpoint(span=CHUNK)
    new = base64.b64decode(AuditCheckpoint.objects.get(first_seq=15).signature)
    old = base64.b64decode(AuditCheckpoint.objects.get(first_seq=1).signature)
    assert new[1:5] == key_id.to_bytes(4, "big") != old[1:5]  # Tink's prefix names the key
    seal()
    assert verify(chunk=CHUNK, workers=1) is None
    assert verify_exported(exported) is None


def test_without_the_signing_key_no_checkpoint_is_taken(
    log: dict[int, int], exported: Path, caplog: pytest.LogCaptureFixture, settings: Any, tmp_path: Path
) -> None:
    # A keys directory of this test's own without the key (the suite's is shared between workers).
    settings.PIWARDEN_KEYS = f"file:{tmp_path / 'keys'}"
    signing.forget()
    with caplog.at_level(logging.ERROR, logger="piwarden.audit"):
        assert checkpoint(span=CHUNK) == 0
    assert "audit-signing.json is missing" in caplog.text
    assert not AuditCheckpoint.objects.exists()
    assert every_way() is None  # the events are checked one by one


def test_the_command_checks_the_export_file_and_names_a_truncation(log: dict[int, int], exported: Path) -> None:
    checkpoint(span=CHUNK)
    out = io.StringIO()
    call_command("audit", "verify", "--quiet", "--checkpoints", str(exported), stdout=out)
    assert "the log is intact" in out.getvalue()
    assert f"holds every run checkpointed in {exported}" in out.getvalue()
    drop_triggers()
    AuditEvent.objects.filter(seq__gt=20).delete()
    AuditChainHead.objects.filter(pk=1).update(seq=20, hash=AuditEvent.objects.get(seq=20).hash)
    AuditCheckpoint.objects.filter(first_seq__gt=20).delete()
    with pytest.raises(CommandError, match=r"seq 20 .*truncated"):
        call_command("audit", "verify", "--quiet", "--checkpoints", str(exported))


def test_a_shorter_run_gets_its_checkpoint_once_its_first_event_is_ten_minutes_old(log: dict[int, int]) -> None:
    """A quiet site's last events do not wait for 10,000 more to be checked against the export."""
    assert checkpoint() == 0  # 30 events, the first of them just now
    later = timezone.now() + chain.CHECKPOINT_EVERY
    assert checkpoint(now=later) == 1
    assert runs() == [(1, EVENTS)]
    record(3)
    seal()
    assert checkpoint(now=later) == 0  # the next run starts with events of just now
    assert checkpoint(now=later + chain.CHECKPOINT_EVERY) == 1
    assert runs() == [(1, EVENTS), (EVENTS + 1, EVENTS + 3)]
    assert every_way() is None
