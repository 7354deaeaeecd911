"""Checkpoints: ``verify`` checks a run of sealed events with one hash of their stored columns,
taken by the sealer once it had checked them one by one.  They only speed it up: a run without
its checkpoint is checked event by event, a run that was rewritten is walked to name the event,
and a chain rewritten with every hash recomputed, which the events alone cannot tell, no longer
matches its checkpoint."""

from __future__ import annotations

import logging

import pytest

from piwarden.audit import chain
from piwarden.audit.chain import checkpoint, seal, verify
from piwarden.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from piwarden.audit.scan import CHECKPOINT_BROKEN
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
def test_an_altered_checkpoint_is_named_at_its_first_event(log: dict[int, int]) -> None:
    checkpoint(span=CHUNK)
    AuditCheckpoint.objects.filter(first_seq=15).update(digest="0" * 64)
    broken = verify(chunk=CHUNK, workers=1)
    assert broken is not None
    assert (broken.event_id, broken.seq, broken.why) == (log[15], 15, CHECKPOINT_BROKEN)


@pytest.mark.duty("SEC-02")
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
