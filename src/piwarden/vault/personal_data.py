"""The sealed outbox in the registry of exporters and erasers (``piwarden.people.registry``).

``outbox_copies``: the sealed copies of the e-mails sent to the person, found by the tag of
their e-mail blind index (``piwarden.vault.outbox``) and opened one at a time for the export.
The gate's record of the export is the record of this opening.  Erasure deletes them (the
eraser runs before the crypto-shredding clears the index that finds them, and ``shred_person``
deletes any left), and so does the withdrawal of the consent they were sent on.
"""

from __future__ import annotations

import email
import email.header
import email.message
import email.policy
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from django.conf import settings

from piwarden.people.models import Person
from piwarden.people.registry import Counts, Deletes, Record, Subject, register
from piwarden.processing.gate import Permit
from piwarden.vault import outbox

_FOLD = re.compile(r"\r?\n(?=[ \t])")  # a header's line breaks (RFC 5322 folding)


def export_outbox(permit: Permit) -> Iterator[Record]:
    index = permit.person.email_index
    if not index:
        return
    for sealed in outbox.sealed_files(Path(settings.PIWARDEN_OUTBOX_DIR), tag=outbox.tag_for_index(index)):
        try:
            message = outbox.open_sealed(sealed.path)
        except FileNotFoundError:
            continue  # pruned since the listing
        yield {"sent_at": sealed.sent_at.isoformat(), **_readable(message)}


def _readable(raw: bytes) -> Record:
    """The message as a person reads it: headers and the text of each part (decoded from base64).

    Parsed with the ``compat32`` policy and decoded here as ``email.policy.default`` would
    (unfolded, RFC 2047 words decoded; each text in its charset, undecodable bytes replaced):
    the same texts for a tenth of the time (~0.1 ms a message instead of ~1 ms).
    """
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    texts = [
        _text(part) for part in message.walk() if part.get_content_maintype() == "text" and not part.is_multipart()
    ]
    return {"to": _header(message["to"]), "subject": _header(message["subject"]), "texts": texts}


def _header(value: str | None) -> str:
    if value is None:
        return "None"  # as str() of a missing header
    unfolded = _FOLD.sub("", str(value))
    return str(email.header.make_header(email.header.decode_header(unfolded)))


def _text(part: email.message.Message) -> str:
    content = part.get_payload(decode=True)
    data = content if isinstance(content, bytes) else b""
    try:
        return data.decode(part.get_content_charset("ascii"), errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")


def erase_outbox(people: Sequence[Person]) -> Counts:
    indexes = {person.pk: person.email_index for person in people if person.email_index}
    return outbox.delete_messages_to_any(Path(settings.PIWARDEN_OUTBOX_DIR), indexes)


register(
    outbox.CATEGORY, subject=Subject.VISITOR, export=export_outbox, erase=Deletes.people(erase_outbox), module=__name__
)
