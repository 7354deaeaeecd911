"""Helpers for the staff side of the rights tests: a verified request, a signed-in console."""

from __future__ import annotations

import io
import zipfile
from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from piwarden.rights.actions import RequestInput, submit_request, verify_request
from piwarden.rights.models import ActingAs, CodePurpose, RequestKind, RightsRequest, VerificationCode
from tests.conftest import sign_in
from tests.rights.mailbox import deliver, last_code_to


def verified_request(
    email: str = "li.na@example.com",
    kind: RequestKind = RequestKind.ACCESS,
    details: str = "",
    language: str = "zh-hans",
    acting_as: ActingAs = ActingAs.SELF,
) -> RightsRequest:
    """A request submitted and verified through the intake's write paths (the code as the e-mail carries it)."""
    given = RequestInput(kind=kind, email=email, details=details, acting_as=acting_as, language=language)
    request = submit_request(given)
    code = VerificationCode.objects.filter(request=request, purpose=CodePurpose.VERIFY).latest("created_at")
    assert code.sealed_code is not None
    assert verify_request(request.reference, code.sealed_code).ok
    deliver()  # the code and the receipt: the staff's e-mails are what the tests count
    mail.outbox.clear()
    return RightsRequest.objects.select_related("person").get(pk=request.pk)


def console(user: User) -> Client:
    client = Client()
    response = sign_in(client, user)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    return client


def act(client: Client, reference: str, action: str, **data: Any) -> Any:
    return client.post(f"/backoffice/rights/{reference}/", {"action": action, **data})


def archive_data(reference: str, address: str) -> str:
    """The requester opens their status page with an e-mailed code and downloads the archive: its data.json."""
    visitor = Client()
    visitor.post("/en/rights/status/", {"reference": reference, "email": address})
    code = last_code_to(address)
    assert (
        visitor.post("/en/rights/status/code/", {"reference": reference, "code": code}).status_code == HTTPStatus.FOUND
    )
    assert "/rights/status/archive/download/" in visitor.get("/en/rights/status/archive/").content.decode()
    download = visitor.get("/en/rights/status/archive/download/")
    assert download.status_code == HTTPStatus.OK
    with zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))) as zipped:
        return zipped.read("data.json").decode()
