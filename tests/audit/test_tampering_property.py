"""Property: any one tampering of a stored, sealed and checkpointed log is detected — by
``verify`` from the database alone, or against the export file of signed checkpoints — and an
honest log always verifies.  Hypothesis draws 1,000 tamperings: a byte of any stored column of
any event flipped, an event deleted, two events swapped, a forged event inserted with a hash that
follows from its columns, the log cut short with its head moved back, the chain rewritten from
an event on with every hash recomputed (checkpoints deleted, as they cannot be signed again), a
checkpoint forged or its signature swapped.  Each runs in a savepoint that is rolled back.  The
attacker dropped the append-only triggers first (they would refuse all of it): what is tested
is what tells when someone could alter the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piwarden.audit import chain
from piwarden.audit.chain import checkpoint, seal, verify, verify_exported
from piwarden.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from tests.audit.test_scan import hash_of, insert, record

EVENTS, SPAN = 40, 7
COLUMNS = ["prev_hash", "hash", "digest", "occurred_at", "event_type", "actor_kind", "purpose", "reason", "extra"]


@pytest.fixture
def sealed_log(db: None, settings: Any, tmp_path: Path) -> Path:
    """40 events sealed, checkpointed (runs of 7, then the tail) and exported, in the test's
    transaction: built once for all of Hypothesis's examples, each of which rolls back."""
    exported = tmp_path / "checkpoints.jsonl"
    settings.PIWARDEN_AUDIT_CHECKPOINTS = exported
    record(EVENTS)
    seal()
    assert checkpoint(span=SPAN) == EVENTS // SPAN
    assert checkpoint(now=timezone.now() + chain.CHECKPOINT_EVERY) == 1
    for taken in AuditCheckpoint.objects.order_by("first_seq"):  # on_commit does not run in a test's transaction
        chain.export_checkpoint(taken, exported)
    assert verify(workers=1) is None
    assert verify_exported(exported) is None
    return exported


def _raw_update(pk: int, column: str, value: object) -> None:
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {connection.ops.quote_name(column)} = %s WHERE id = %s", [value, pk])  # noqa: S608


def _stored(pk: int, column: str) -> str:
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT CAST({connection.ops.quote_name(column)} AS TEXT) FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return str(cursor.fetchone()[0])


def flip(seq: int, column: str, at: int, bit: int) -> None:
    pk = AuditEvent.objects.get(seq=seq).pk
    text = _stored(pk, column) or " "  # an empty column gets a character
    i = at % len(text)
    changed = chr(ord(text[i]) ^ (1 << bit)) if text[i].isascii() else "x"
    if changed == "\x00" or changed == text[i]:
        changed = "z" if text[i] != "z" else "y"
    value: object = text[:i] + changed + text[i + 1 :]
    if column == "extra":
        value = f'{{"forged": "{i}"}}'  # the column must hold JSON (a CHECK, and jsonb): a different value
    if column == "occurred_at" and connection.vendor == "postgresql":
        value = AuditEvent.objects.get(pk=pk).occurred_at + timezone.timedelta(microseconds=1 + at)
    _raw_update(pk, column, value)


def rehash(from_seq: int) -> None:
    top = AuditChainHead.objects.get(pk=1).seq
    for seq in range(from_seq, top + 1):
        pk = AuditEvent.objects.get(seq=seq).pk
        if seq > from_seq:
            AuditEvent.objects.filter(pk=pk).update(prev_hash=AuditEvent.objects.get(seq=seq - 1).hash)
        AuditEvent.objects.filter(pk=pk).update(hash=hash_of(pk))
    AuditChainHead.objects.filter(pk=1).update(hash=AuditEvent.objects.get(seq=top).hash)
    AuditCheckpoint.objects.all().delete()


def tamper(kind: str, seq: int, other: int, column: str, at: int, bit: int) -> None:  # noqa: PLR0917
    if kind == "flip":
        flip(seq, column, at, bit)
    elif kind == "delete":
        AuditEvent.objects.filter(seq=seq).delete()
    elif kind == "insert":
        insert(dict(AuditEvent.objects.exclude(seq=None).values_list("seq", "id")), seq)
    elif kind == "swap":
        other = other if other != seq else (seq % EVENTS) + 1
        a, b = AuditEvent.objects.get(seq=seq).pk, AuditEvent.objects.get(seq=other).pk
        AuditEvent.objects.filter(pk=a).update(seq=-1)
        AuditEvent.objects.filter(pk=b).update(seq=seq)
        AuditEvent.objects.filter(pk=a).update(seq=other)
    elif kind == "cut":  # the log from seq on deleted, the head moved back to a valid state
        AuditEvent.objects.filter(seq__gte=max(seq, 2)).delete()
        AuditCheckpoint.objects.filter(last_seq__gte=max(seq, 2)).delete()
        last = AuditEvent.objects.get(seq=max(seq, 2) - 1)
        AuditChainHead.objects.filter(pk=1).update(seq=last.seq, hash=last.hash)
    elif kind == "rewrite":  # content changed, every hash after it recomputed
        pk = AuditEvent.objects.get(seq=seq).pk
        AuditEvent.objects.filter(pk=pk).update(reason=f"forged {at}")
        rehash(seq)
    elif kind == "checkpoint":
        forged = AuditCheckpoint.objects.order_by("first_seq")[seq % AuditCheckpoint.objects.count()]
        if bit % 2:
            AuditCheckpoint.objects.filter(pk=forged.pk).update(digest=f"{at % 10}" * 64)
        else:
            signature = AuditCheckpoint.objects.exclude(pk=forged.pk).order_by("?").first().signature  # type: ignore[union-attr]
            AuditCheckpoint.objects.filter(pk=forged.pk).update(signature=signature)


@pytest.mark.duty("SEC-02")
@pytest.mark.usefixtures("triggers_dropped")  # the attacker could alter the schema: the chain alone must tell
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["flip", "delete", "insert", "swap", "cut", "rewrite", "checkpoint"]),
    seq=st.integers(1, EVENTS),
    other=st.integers(1, EVENTS),
    column=st.sampled_from(COLUMNS),
    at=st.integers(0, 10_000),
    bit=st.integers(0, 6),
)
def test_every_tampering_is_detected(  # noqa: PLR0917  # Hypothesis's arguments
    sealed_log: Path, kind: str, seq: int, other: int, column: str, at: int, bit: int
) -> None:
    with transaction.atomic():
        tamper(kind, seq, other, column, at, bit)
        broken = verify(workers=1)
        if broken is None:
            broken = verify_exported(sealed_log)
        assert broken is not None, (kind, seq, other, column, at, bit)
        transaction.set_rollback(True)
    assert verify(workers=1) is None  # rolled back: the honest log verifies again
