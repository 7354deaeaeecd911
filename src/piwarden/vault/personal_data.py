"""The sealed outbox in the registry of exporters and erasers (``piwarden.people.registry``).

``outbox_copies``: the sealed copies of the e-mails sent to the person, found by the tag of
their e-mail blind index (``piwarden.vault.outbox``) and opened one at a time for the export.
The gate's record of the export is the record of this opening.  Erasure deletes them (the
eraser runs before the crypto-shredding clears the index that finds them, and ``shred_person``
deletes any left), and so does the withdrawal of the consent they were sent on.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from piwarden.people.models import Person
from piwarden.people.registry import Deletes, Record, Subject, register
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
        yield {"sent_at": sealed.sent_at.isoformat(), **_readable(message)}


def _readable(raw: bytes) -> Record:
    """The message as a person reads it: headers and the text of each part (decoded from base64)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    texts = [
        part.get_content()
        for part in message.walk()
        if part.get_content_maintype() == "text" and not part.is_multipart()
    ]
    return {"to": str(message["to"]), "subject": str(message["subject"]), "texts": texts}


def erase_outbox(person: Person) -> int:
    if not person.email_index:
        return 0
    return outbox.delete_messages_to(Path(settings.PIWARDEN_OUTBOX_DIR), person.email_index)


register("outbox_copies", subject=Subject.VISITOR, export=export_outbox, erase=Deletes(erase_outbox), module=__name__)
