"""The sealed outbox in the registry of exporters and erasers (``piwarden.people.registry``).

``outbox_copies``: the sealed copies of the e-mails sent to the person, found by the tag of
their e-mail blind index (``piwarden.vault.outbox``) and opened one at a time for the export.
The gate's record of the export is the record of this opening.  Erasure deletes them in the
crypto-shredding step (``shred_person``), before the index that finds them is cleared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from piwarden.people.registry import Record, Shredded, Subject, register
from piwarden.processing.gate import Permit
from piwarden.vault import outbox


def export_outbox(permit: Permit) -> Iterator[Record]:
    index = permit.person.email_index
    if not index:
        return
    tag = outbox.tag_for_index(index)
    for sealed in outbox.sealed_files(Path(settings.PIWARDEN_OUTBOX_DIR)):
        if tag not in sealed.tags:
            continue
        try:
            message = outbox.open_sealed(sealed.path)
        except FileNotFoundError:
            continue  # pruned since the listing
        yield {"sent_at": sealed.sent_at.isoformat(), "message": message.decode("utf-8", "replace")}


register(
    "outbox_copies",
    subject=Subject.VISITOR,
    export=export_outbox,
    erase=Shredded("the sealed copies of mail sent to the person are deleted"),
    module=__name__,
)
