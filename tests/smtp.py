"""A real SMTP server for the mail tests (aiosmtpd on 127.0.0.1): it keeps what it receives and may
refuse chosen recipients, or keep the sender waiting for its answer to a chosen message. The
``smtp`` fixture in ``conftest.py`` starts one and points
``MAILERS["default"]`` at it."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.serving import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]


class Collector:
    """An aiosmtpd handler that keeps every message and may refuse chosen recipients.

    With ``hold`` = N, the N-th message is kept but the answer to it is held back (up to a minute):
    the sender waits for a message the server has, as a process killed while talking to the mail
    server leaves it."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refuse: set[str] = set()
        self.hold = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:  # noqa: N802  # aiosmtpd's hook name
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802  # aiosmtpd's hook name
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        if len(self.received) == self.hold:
            await asyncio.sleep(60)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


class SMTPServer:
    def __init__(self) -> None:
        self.collector = Collector()
        self.port = free_port()
        # What a ``piwarden`` process of the test needs to send here (tests.commands.command_env).
        self.env = {"PIWARDEN_EMAIL": "smtp", "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(self.port)}
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
