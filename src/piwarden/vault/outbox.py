"""The embedded e-mail "outbox": messages written to files, sealed.

The embedded default has no mail server, so outgoing mail is written under
``var/outbox/``.  Those messages carry people's addresses and names, and
invariant 5 (never plaintext at rest) covers them like any table: each
message is sealed with a fresh AES256-GCM key that is itself wrapped by the
key-encryption key, exactly as a person's data key is.  ``piwarden outbox``
lists and opens them for the operator.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tink
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage
from django.utils import timezone
from tink import aead

from piwarden.vault.keys import get_provider

SUFFIX = ".eml.sealed"


def _ad(name: str) -> bytes:
    return b"piwarden/outbox/v1|" + name.encode()


def seal_message(directory: Path, raw: bytes) -> Path:
    """Write ``raw`` (an RFC 5322 message) sealed into ``directory``; return the file."""
    name = f"{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:12]}{SUFFIX}"
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


class SealedFileBackend(BaseEmailBackend):
    """Django mail backend: one sealed file per message (the embedded default)."""

    def __init__(self, *, file_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = Path(file_path)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            seal_message(self.directory, message.message().as_bytes())
            sent += 1
        return sent
