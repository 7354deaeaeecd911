"""People with contact data for the cessation tests: consultation requesters (through the form),
rights requesters with a confirmed address (through the portal's actions and a real SMTP server)
and account holders (sign-up and the e-mailed link, through the pages), each with unique values a
canary scan can look for."""

from __future__ import annotations

import datetime
import io
import uuid
from dataclasses import dataclass

from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from piwarden.rights.actions import RequestInput, submit_request, verify_request
from piwarden.rights.mail import send_code
from piwarden.rights.models import ActingAs, RequestKind, VerificationCode
from tests.accounts.helpers import confirmed_account
from tests.conftest import consultation_data
from tests.rights.mailbox import code_in
from tests.smtp import SMTPServer

REASON = "The company closes this website for good"


@dataclass(frozen=True)
class Visitor:
    email: str
    language: str
    values: dict[str, str]


def canary_values() -> dict[str, str]:
    tag = uuid.uuid4().hex
    return {
        "name": f"Canary{tag}",
        "email": f"canary-{tag}@example.com",
        "company": f"Canary Company {tag}",
        "position": f"Canary Officer {tag}",
        "phone": "139" + str(uuid.uuid4().int)[:8],
    }


def consults(client: Client, language: str) -> Visitor:
    values = canary_values()
    url = "/en/consultation/" if language == "en" else "/consultation/"
    response = client.post(url, consultation_data(**values))
    assert response.status_code == 302, response.content.decode()[:300]
    return Visitor(values["email"], language, values)


def asks_for_a_copy(smtp: SMTPServer, language: str, email: str | None = None) -> Visitor:
    """A rights request whose address is confirmed with the code the real SMTP server received."""
    address = email or canary_values()["email"]
    given = RequestInput(kind=RequestKind.COPY, email=address, details="", acting_as=ActingAs.SELF, language=language)
    request = submit_request(given)
    code = VerificationCode.objects.get(request=request)
    assert send_code(str(code.pk)) == "sent"
    message = [m for m in smtp.collector.to(address) if request.reference in m.subject][-1]
    assert verify_request(request.reference, code_in(message.body)).ok
    return Visitor(address, language, {"email": address})


def opens_an_account(smtp: SMTPServer, language: str) -> Visitor:
    """An account signed up for and confirmed by the link the real SMTP server received: nothing else."""
    address = canary_values()["email"]
    confirmed_account(smtp, address, language)
    return Visitor(address, language, {"email": address})


def notices_to(smtp: SMTPServer, address: str) -> list[str]:
    """The subjects of the cessation notices the address received."""
    return [m.subject for m in smtp.collector.to(address) if "停止运营" in m.subject or "closes on" in m.subject]


def a_month_ahead() -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=30)


def announce(date: datetime.date, *extra: str) -> None:
    call_command(
        "cessation",
        "announce",
        "--date",
        date.isoformat(),
        "--reason",
        REASON,
        *extra,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
