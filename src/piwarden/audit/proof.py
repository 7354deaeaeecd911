"""A filtered part of the audit log, exported with the proof that its events are the log's.

The security auditor exports the events a filter selects (``export``): each with every column
the chain covers, and, for every signed checkpoint whose run holds one of them, the hashed text
of each event from the first selected one to the end of that run.  Whoever holds the export and
the public signing key, and nothing else, checks it (``check``; ``piwarden audit check-export``):

* each text's SHA-256 is the next text's prev_hash, and the last one is the checkpoint's
  ``last_hash``, whose signature holds: the texts are the log's, in order, as it was sealed;
* each selected event's stored hash is the hash of the text at its seq.

Events sealed after the last checkpoint, and events not sealed yet, are exported too, marked
``proven: false``: the next checkpoint (within 10 minutes) covers them.  The texts are the
database's own rendering (``chain._render``), so a check needs no database and no Django.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from django.db import connection

from piwarden.audit import chain, signing
from piwarden.audit.models import CONTENT_ATTRS, AuditCheckpoint, AuditEvent
from piwarden.audit.scan import SEP

FORMAT = "piwarden audit export v1"


def export(events: Sequence[AuditEvent], described: dict[str, str]) -> dict[str, Any]:
    """The export document of ``events`` (selected by the filter ``described``)."""
    seqs = sorted(e.seq for e in events if e.seq is not None)
    proofs, proven = [], set()
    if seqs:
        runs = AuditCheckpoint.objects.filter(last_seq__gte=seqs[0], first_seq__lte=seqs[-1]).order_by("first_seq")
        for run in runs:
            inside = [s for s in seqs if run.first_seq <= s <= run.last_seq]
            if not inside:
                continue
            proofs.append(
                {
                    "checkpoint": {
                        "first_seq": run.first_seq,
                        "last_seq": run.last_seq,
                        "digest": run.digest,
                        "last_hash": run.last_hash,
                        "signature": run.signature,
                    },
                    "from_seq": inside[0],
                    "texts": _texts(inside[0], run.last_seq),
                }
            )
            proven.update(inside)
    return {
        "format": FORMAT,
        "filter": described,
        "events": [_event(e, proven=e.seq in proven) for e in events],
        "proofs": proofs,
    }


def _texts(lo: int, hi: int) -> list[str]:
    """The hashed text of each event with lo <= seq <= hi, in seq order, as the sealer hashed it."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    seq = connection.ops.quote_name("seq")
    render = chain._render(connection.vendor, with_link=True)  # the chain's own bytes
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {render} FROM {table} WHERE {seq} >= %s AND {seq} <= %s ORDER BY {seq}", [lo, hi])  # noqa: S608  # names from the model
        return [str(text) for (text,) in cursor.fetchall()]


def _event(event: AuditEvent, *, proven: bool) -> dict[str, Any]:
    values = {name: getattr(event, name) for name in CONTENT_ATTRS}
    values["occurred_at"] = event.occurred_at.isoformat()
    if values.get("person_id") is not None:
        values["person_id"] = str(values["person_id"])
    return {
        "id": event.pk,
        "seq": event.seq,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
        "digest": event.digest,
        **values,
        "proven": proven,
    }


def check(document: dict[str, Any], verifier: signing.Verifier) -> list[str]:
    """What is wrong with an export, in plain words (empty: every event marked proven is)."""
    if document.get("format") != FORMAT:
        return [f"not a {FORMAT} document"]
    problems: list[str] = []
    hashes: dict[int, str] = {}
    texts_at: dict[int, str] = {}
    for number, proof in enumerate(document.get("proofs", []), start=1):
        mark = proof.get("checkpoint", {})
        try:
            first, last = int(mark["first_seq"]), int(mark["last_seq"])
            digest, last_hash, signed = str(mark["digest"]), str(mark["last_hash"]), str(mark["signature"])
            texts, expected = [str(t) for t in proof["texts"]], int(proof["from_seq"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"proof {number}: incomplete")
            continue
        if not verifier.holds(signed, first, last, digest, last_hash):
            problems.append(f"proof {number} (seq {first} to {last}): the checkpoint's signature does not hold")
            continue
        previous: str | None = None
        for text in texts:
            parts = [*text.split(SEP, 2), "", ""]  # prev_hash, seq, the rest (padded: a short text fails)
            if parts[1] != str(expected) or (previous is not None and parts[0] != previous):
                problems.append(f"proof {number}: the text of seq {expected} does not follow the one before it")
                break
            previous = hashlib.sha256(text.encode()).hexdigest()
            hashes[expected], texts_at[expected] = previous, text
            expected += 1
        else:
            if expected - 1 != last or previous != last_hash:
                problems.append(f"proof {number}: its texts do not end at the checkpoint's last event and hash")
    for event in document.get("events", []):
        if not event.get("proven"):
            continue
        seq = event.get("seq", -1)
        if hashes.get(seq) != event.get("hash"):
            problems.append(f"event seq {seq} (id {event.get('id')}): its hash is not the one proven")
        elif not _shown_as_hashed(event, texts_at[seq]):
            problems.append(f"event seq {seq} (id {event.get('id')}): its columns are not the ones hashed")
    return problems


# The plain columns of an event as its hashed text holds them (prev_hash, seq, then these).
_PLAIN = ("id", "digest", None, "event_type", "actor_kind", "actor_id", "person_id", "purpose", None, "reason")


def _shown_as_hashed(event: dict[str, Any], text: str) -> bool:
    """Whether the event's plain columns read as its hashed text has them (the timestamp and the
    JSON columns are spelled by the database, and covered by ``digest``, which is compared)."""
    parts = text.split(SEP)[2:]
    for name, stored in zip(_PLAIN, parts, strict=False):
        if name is None:
            continue
        value = event.get(name)
        shown, held = ("" if value is None else str(value)), stored
        if name == "person_id":  # SQLite stores a UUID as 32 hex digits
            shown, held = shown.replace("-", ""), held.replace("-", "")
        if shown != held:
            return False
    return True


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True)
