"""The audit log's cut at a signed checkpoint: its write path (docs/audit-log-cut.md).

A cut says: the events up to ``cut_seq`` (the last of a checkpoint's run) are past their retention
and may be deleted, and the chain goes on from ``cut_hash`` (that checkpoint's last hash).  It is
written once, signed with the audit signing key, in a durable transaction with its ``audit.cut``
event (chained after the cut point, so the cut is in the log it cuts), and appended to the
checkpoints' export file once committed.  The deletion itself is the retention sweep's
(:mod:`piwarden.retention.cut`), in batches that the append-only trigger allows at or below the
greatest cut_seq; ``piwarden audit verify`` checks every cut's signature and walks from the newest.
"""

from __future__ import annotations

import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from piwarden.audit import signing
from piwarden.audit.chain import cut_stamp, export_cut
from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditCheckpoint, AuditCut, AuditEvent


class CutRefused(Exception):
    """The checkpoint cannot be cut at: the message says why."""


def newest() -> int:
    """The greatest cut_seq (0: the log was never cut)."""
    return int(AuditCut.objects.aggregate(top=Max("cut_seq"))["top"] or 0)


@transaction.atomic(durable=True)
def make_cut(
    first_seq: int, *, now: datetime.datetime | None = None, extra: dict[str, Any] | None = None
) -> AuditCut | None:
    """Cut the log at the end of the checkpoint starting at ``first_seq``: the signed
    :class:`AuditCut` row and its ``audit.cut`` event, exported on commit.  None when a cut at or
    after it exists already (another sweep made it); :class:`CutRefused` when the checkpoint's
    signature does not hold or its last hash is not the stored hash of its last event."""
    taken = AuditCheckpoint.objects.get(first_seq=first_seq)
    if AuditCut.objects.filter(cut_seq__gte=taken.last_seq).exists():
        return None
    verifier = signing.Verifier()
    if not verifier.holds(taken.signature, taken.first_seq, taken.last_seq, taken.digest, taken.last_hash):
        raise CutRefused(f"the checkpoint of seq {taken.first_seq}-{taken.last_seq} is not signed by the audit key")
    stored = AuditEvent.objects.filter(seq=taken.last_seq).values_list("hash", flat=True).first()
    if stored != taken.last_hash:
        raise CutRefused(f"the event at seq {taken.last_seq} does not carry its checkpoint's last hash")
    made_at = (now or timezone.now()).astimezone(datetime.UTC).replace(microsecond=0)
    signed = signing.sign_cut(
        signing.CutFields(taken.last_seq, taken.last_hash, taken.first_seq, taken.digest, cut_stamp(made_at))
    )
    cut = AuditCut.objects.create(
        cut_seq=taken.last_seq,
        cut_hash=taken.last_hash,
        checkpoint_first_seq=taken.first_seq,
        checkpoint_digest=taken.digest,
        made_at=made_at,
        signature=signed,
    )
    record_event(
        EventType.AUDIT_CUT,
        extra={"cut_seq": cut.cut_seq, "checkpoint_first_seq": taken.first_seq, "cut_hash": cut.cut_hash}
        | (extra or {}),
    )
    transaction.on_commit(partial(export_cut, cut))
    return cut
