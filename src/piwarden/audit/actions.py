"""The audit log's own write paths: the signing key's rotation, the append-only triggers put back,
and the export of checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from piwarden.audit import appendonly, signing
from piwarden.audit.chain import export_checkpoint
from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditCheckpoint


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
    """Append to the export file every checkpoint of the database it does not hold yet (one that
    failed to be written when it was taken, or a new file); return how many."""
    path = path or settings.PIWARDEN_AUDIT_CHECKPOINTS
    present: set[int] = set()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                present.add(int(json.loads(line)["first_seq"]))
            except (ValueError, KeyError, TypeError):
                continue
    written = 0
    for taken in AuditCheckpoint.objects.exclude(first_seq__in=present).order_by("first_seq").iterator():
        export_checkpoint(taken, path)
        written += 1
    return written
