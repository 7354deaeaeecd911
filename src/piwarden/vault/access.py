"""The operator's read path to the sealed outbox: every opening is recorded before it happens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from django.db import transaction

from piwarden.audit.log import EventType, record_event
from piwarden.vault.outbox import open_sealed

# An event names at most this many files (a `list` of a large outbox counts them all).
NAMES_RECORDED = 50


def open_outbox_messages(paths: Sequence[Path], *, action: Literal["list", "show"]) -> list[bytes]:
    """The messages of these sealed files, after ``outbox.read`` records that they are opened.

    Opening sealed mail reads people's addresses and messages, so the record commits first, on
    its own: a message that fails to open afterwards (keys unavailable) was still asked for.
    """
    if not paths:
        return []
    names = [path.name for path in paths]
    with transaction.atomic(durable=True):
        record_event(
            EventType.OUTBOX_READ, extra={"action": action, "messages": len(names), "names": names[:NAMES_RECORDED]}
        )
    return [open_sealed(path) for path in paths]
