"""The embedded e-mail "outbox": messages written to files, sealed.

The embedded default has no mail server, so outgoing mail is written under
``var/outbox/``.  Those messages carry people's addresses and names, and
invariant 5 (never plaintext at rest) covers them like any table: each
message is sealed with a fresh AES256-GCM key that is itself wrapped by the
key-encryption key, exactly as a person's data key is.  ``piwarden outbox``
lists, opens and prunes them for the operator (through
:func:`piwarden.vault.access.open_outbox_messages` and
:func:`piwarden.vault.actions.prune_outbox`, which audit it).

The copies are personal data (category ``outbox_copies`` of the declaration,
file store ``vault:outbox``), so two more rules hold:

* **Kept only as long as declared.**  A file's name starts with the time it
  was sealed (UTC); ``piwarden outbox prune`` deletes every file older than
  the category's ``retention_days``.  The name is the sealed message's
  associated data, so a file renamed to look younger no longer opens.
* **Deleted when the person is shredded.**  The sealed files cannot say whose
  they are, yet shredding must find them without a key to open them.  Each
  name carries, per recipient, a *tag*: a keyed digest (the blind-index PRF,
  with its own domain ``outbox``) of the recipient's e-mail blind index.
  ``shred_person`` derives the tag from the person's blind index, before
  clearing it, and deletes the files that carry it.  Without the PRF key a tag
  reveals nothing and cannot be matched against the ``people`` table (whose
  indexes are digests in another domain); once the person's files are deleted
  no tag of theirs is left anywhere.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import tink
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage
from django.utils import timezone
from tink import aead

from piwarden.policy.declaration import load_declaration
from piwarden.vault import blind
from piwarden.vault.keys import get_provider

SUFFIX = ".eml.sealed"
CATEGORY = "outbox_copies"  # the copies' category in policy/declaration.toml
STORE = "vault:outbox"  # its name in policy/declaration.toml (VaultConfig.file_stores)
TAG_CHARS = 32  # 128 bits of the digest: collisions are out of reach, names stay short
# A file name has at most 255 bytes; six tags (33 characters each) and the rest fit.  The site
# sends every message to one address; a message to more would need another way to be found.
MAX_RECIPIENTS = 6
_NAME = re.compile(
    rf"^(?P<sent>\d{{8}}-\d{{6}})-[0-9a-f]{{12}}(?P<tags>(?:\.[0-9a-f]{{{TAG_CHARS}}})*){re.escape(SUFFIX)}$"
)


class TooManyRecipients(ValueError):
    """A sealed message could not be tagged for every recipient (see MAX_RECIPIENTS)."""


def _ad(name: str) -> bytes:
    return b"piwarden/outbox/v1|" + name.encode()


def tag_for_index(email_index: str) -> str:
    """The outbox tag of a person, from their e-mail blind index."""
    return blind.blind_index("outbox", email_index)[:TAG_CHARS]


def tag_for_address(address: str) -> str:
    return tag_for_index(blind.email_index(address))


def seal_message(directory: Path, raw: bytes, tags: Sequence[str] = ()) -> Path:
    """Write ``raw`` (an RFC 5322 message) sealed into ``directory``; return the file."""
    suffix = "".join(f".{tag}" for tag in sorted(set(tags)))
    name = f"{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:12]}{suffix}{SUFFIX}"
    handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    wrapped = tink.proto_keyset_format.serialize_encrypted(handle, get_provider().kek(), _ad(name))
    ciphertext = handle.primitive(aead.Aead).encrypt(raw, _ad(name))
    body = json.dumps(
        {"key": base64.b64encode(wrapped).decode(), "message": base64.b64encode(ciphertext).decode()}
    ).encode()
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(body)
    return path


def open_sealed(path: Path) -> bytes:
    """The message bytes of a sealed outbox file (needs the key-encryption key)."""
    blob = json.loads(path.read_bytes())
    wrapped = base64.b64decode(blob["key"])
    handle = tink.proto_keyset_format.parse_encrypted(wrapped, get_provider().kek(), _ad(path.name))
    plaintext: bytes = handle.primitive(aead.Aead).decrypt(base64.b64decode(blob["message"]), _ad(path.name))
    return plaintext


@dataclass(frozen=True)
class SealedFile:
    path: Path
    sent_at: datetime.datetime
    tags: frozenset[str]


def sealed_files(directory: Path, *, tag: str | None = None) -> Iterator[SealedFile]:
    """The outbox's messages, oldest first; files whose name is not ours are left alone.

    With ``tag``, only the messages to that recipient: the names are compared as the directory
    lists them and only theirs are parsed (an export or an erasure reads a handful of a person's
    messages among every one the outbox keeps).
    """
    if not directory.is_dir():
        return
    marker = f".{tag}" if tag is not None else ""
    with os.scandir(directory) as entries:
        names = sorted(e.name for e in entries if e.name.endswith(SUFFIX) and marker in e.name)
    for name in names:
        match = _NAME.match(name)
        if match is None:
            continue
        tags = frozenset(filter(None, match["tags"].split(".")))
        if tag is not None and tag not in tags:
            continue
        sent = datetime.datetime.strptime(match["sent"], "%Y%m%d-%H%M%S").replace(tzinfo=datetime.UTC)
        yield SealedFile(directory / name, sent, tags)


def retention() -> datetime.timedelta:
    """How long the declaration keeps outbox copies (their category's retention_days)."""
    category = load_declaration().category_of_store(STORE)
    if category is None:  # `policy check` refuses this declaration; fail closed, delete nothing
        raise LookupError(f"policy/declaration.toml declares no category with files = [{STORE!r}]")
    return datetime.timedelta(days=category.retention_days)


def expired_files(directory: Path, now: datetime.datetime | None = None) -> list[SealedFile]:
    cutoff = (now or timezone.now()) - retention()
    return [f for f in sealed_files(directory) if f.sent_at < cutoff]


def _delete(files: Sequence[SealedFile]) -> int:
    deleted = 0
    for sealed in files:
        try:
            sealed.path.unlink()
        except FileNotFoundError:
            continue  # pruned by a concurrent run
        deleted += 1
    return deleted


def delete_expired(directory: Path, now: datetime.datetime | None = None) -> int:
    """Delete the copies older than the declared retention; returns how many.

    The caller records the deletion in its own audit event, in its own transaction
    (:func:`piwarden.vault.actions.prune_outbox`; the retention sweep records one event for all
    it deleted).
    """
    return _delete(expired_files(directory, now))


def delete_messages_to(directory: Path, email_index: str) -> int:
    """Delete every message sent to the person with this e-mail blind index (for shredding).

    The caller records the erasure in its own audit event, in its own transaction.
    """
    return delete_messages_to_any(directory, {email_index: email_index}).get(email_index, 0)


def delete_messages_to_any(directory: Path, email_indexes: Mapping[Any, str]) -> dict[Any, int]:
    """Delete every message sent to any of these people (key → e-mail blind index), listing the
    directory once for all of them; returns how many of each person's were deleted (a message to
    two of them counts for both).  Only the names that carry one of their tags are parsed: the
    outbox may hold tens of thousands of other people's messages."""
    if not email_indexes or not directory.is_dir():
        return {}
    with os.scandir(directory) as entries:
        names = [e.name for e in entries if e.name.endswith(SUFFIX)]
    if not names:
        return {}  # no tag computed (a keyed digest each) for an empty outbox
    owners: dict[str, list[Any]] = {}
    for key, index in email_indexes.items():
        owners.setdefault(tag_for_index(index), []).append(key)
    counts: dict[Any, int] = {}
    for name in names:
        if owners.keys().isdisjoint(name[: -len(SUFFIX)].split(".")) or _NAME.match(name) is None:
            continue
        try:
            (directory / name).unlink()
        except FileNotFoundError:
            continue  # pruned by a concurrent run
        for tag in owners.keys() & name[: -len(SUFFIX)].split("."):
            for key in owners[tag]:
                counts[key] = counts.get(key, 0) + 1
    return counts


class SealedFileBackend(BaseEmailBackend):
    """Django mail backend: one sealed file per message (the embedded default)."""

    def __init__(self, *, file_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = Path(file_path)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            recipients = message.recipients()
            if not recipients:
                continue
            tags = {tag_for_address(address) for _, address in getaddresses(recipients)}
            if len(tags) > MAX_RECIPIENTS:
                raise TooManyRecipients(
                    f"the sealed outbox tags at most {MAX_RECIPIENTS} recipients per message, got {len(tags)}"
                )
            seal_message(self.directory, message.message().as_bytes(), sorted(tags))
            sent += 1
        return sent
