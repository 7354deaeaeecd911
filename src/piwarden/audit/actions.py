"""The audit log's own write paths: the signing key's rotation, the append-only triggers put back,
and the export of checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from piwarden.audit import appendonly, signing
from piwarden.audit.chain import export_checkpoint, export_cut
from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditCheckpoint, AuditCut


@transaction.atomic(durable=True)
def rotate_signing_key() -> int:
    """Add a new signing key and make it primary (``signing.rotate``), audited; its id."""
    key_id = signing.rotate()
    record_event(EventType.AUDIT_SIGNING_KEY_ROTATED, extra={"key_id": key_id})
    return key_id


@transaction.atomic(durable=True)
def restore_triggers() -> list[str]:
    """Put the append-only triggers back, audited with the names of those that were missing,
    disabled or altered (a configuration change like any other: whoever dropped them is not the
    only one who should know)."""
    missing = appendonly.missing(connection)
    appendonly.install(connection)
    record_event(EventType.AUDIT_TRIGGERS_RESTORED, extra={"missing": missing})
    return missing


def export_missing(path: Path | None = None) -> int:
    """Append to the export file every checkpoint and cut of the database it does not hold yet (one
    that failed to be written when it was made, or a new file), in seq order; return how many."""
    path = path or settings.PIWARDEN_AUDIT_CHECKPOINTS
    present: set[int] = set()
    cuts: set[int] = set()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                if "cut_seq" in entry:
                    cuts.add(int(entry["cut_seq"]))
                else:
                    present.add(int(entry["first_seq"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    missing: list[tuple[int, int, AuditCheckpoint | AuditCut]] = [
        (c.last_seq, 0, c) for c in AuditCheckpoint.objects.exclude(first_seq__in=present)
    ]
    missing += [(c.cut_seq, 1, c) for c in AuditCut.objects.exclude(cut_seq__in=cuts)]
    for _, _, taken in sorted(missing, key=lambda m: m[:2]):
        if isinstance(taken, AuditCut):
            export_cut(taken, path)
        else:
            export_checkpoint(taken, path)
    return len(missing)
