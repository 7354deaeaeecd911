"""Sales see only the consultation requests assigned to them (issue 8 §2, least privilege).

The privacy officer sees every request and assigns each to a staff member whose role answers
them; the assignment is a write path with its audit event.  A sales consultant's inbox lists
their own requests only; another's request answers 404, as if it did not exist, and the refused
opening is recorded.  Everything goes through HTTP, and the read path is also called directly,
as an API or a command would.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.inquiries import access
from piwarden.inquiries.models import Inquiry
from tests.backoffice.test_staff_console import REASON, reveal, staff_client
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db

REFERENCE = re.compile(r'href="/backoffice/inquiries/([A-Z0-9]{10})/"')


@pytest.fixture
def dave(tmp_path: Path) -> User:
    """A second sales consultant."""
    return make_staff("dave", "sales", tmp_path)


@pytest.fixture
def two(submit: Any) -> tuple[Inquiry, Inquiry]:
    for tag in ("one", "two"):
        assert submit(name=f"Person {tag}", email=f"{tag}@example.com").status_code == HTTPStatus.FOUND
    first, second = Inquiry.objects.order_by("submitted_at", "id")
    return first, second


def listed(client: Any) -> set[str]:
    response = client.get("/backoffice/")
    assert response.status_code == HTTPStatus.OK
    return set(REFERENCE.findall(response.content.decode()))


def refusals(reference: str) -> list[AuditEvent]:
    return [
        e for e in AuditEvent.objects.filter(event_type="staff.access_refused") if e.extra.get("about") == reference
    ]


def test_the_privacy_officer_assigns_and_the_assignment_is_recorded(carol, alice, two):
    first, _ = two
    officer = staff_client(carol)
    assert listed(officer) == {i.reference for i in two}  # the officer sees every request

    response = officer.post(f"/backoffice/inquiries/{first.reference}/assign/", {"assignee": alice.pk})

    assert response.status_code == HTTPStatus.FOUND
    assert Inquiry.objects.get(pk=first.pk).assigned_to == alice
    event = AuditEvent.objects.get(event_type="inquiry.assigned")
    assert (event.actor, event.person_id, event.purpose) == (carol, first.person_id, "respond_inquiry")
    assert event.extra == {"inquiry": first.reference, "assigned_to": alice.pk, "previously": None}
    inbox = officer.get("/backoffice/").content.decode()
    assert "alice" in inbox  # the assignee is shown in the inbox
    page = officer.get(response["Location"]).content.decode()
    assert 'id="assignee"' in page
    assert "alice" in page
    assert verify_chain() is None


def test_sales_see_only_their_own_requests(alice, dave, two, assign):
    first, second = two
    assign(first.reference, alice)
    assign(second.reference, dave)
    alice_client, dave_client = staff_client(alice), staff_client(dave)

    assert listed(alice_client) == {first.reference}
    assert listed(dave_client) == {second.reference}
    assert alice_client.get(f"/backoffice/inquiries/{first.reference}/").status_code == HTTPStatus.OK
    assert reveal(alice_client, first.reference).status_code == HTTPStatus.OK


def test_another_consultants_request_is_not_found_and_the_refusal_is_recorded(alice, dave, two, assign):
    first, second = two
    assign(first.reference, alice)
    assign(second.reference, dave)
    client = staff_client(alice)

    assert client.get(f"/backoffice/inquiries/{second.reference}/").status_code == HTTPStatus.NOT_FOUND
    response = reveal(client, second.reference)
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert "two@example.com" not in response.content.decode()
    assert not AuditEvent.objects.filter(event_type="pii.revealed").exists()
    assert [(e.actor, e.extra["page"]) for e in refusals(second.reference)] == [(alice, "inquiry"), (alice, "inquiry")]
    # An unknown reference answers the same 404 (nothing tells a taken reference from a free one).
    assert client.get("/backoffice/inquiries/ZZZZZZZZZZ/").status_code == HTTPStatus.NOT_FOUND


def test_an_unassigned_request_is_nobodys_in_sales(alice, two):
    client = staff_client(alice)
    assert listed(client) == set()
    assert client.get(f"/backoffice/inquiries/{two[0].reference}/").status_code == HTTPStatus.NOT_FOUND


def test_called_directly_the_read_path_refuses_another_consultants_request(alice, dave, two, assign):
    """As an API or a command would call it: the object-level check is in the access function."""
    from tests.inquiries.test_access import as_request_sees  # noqa: PLC0415  # a test module

    first, second = two
    assign(second.reference, dave)
    staff = as_request_sees(staff_client(alice))
    with pytest.raises(access.RevealRefused):
        access.reveal_inquiry_fields(
            staff, Inquiry.objects.get(pk=second.pk), fields=["name"], purpose="respond_inquiry", reason=REASON
        )
    refused = AuditEvent.objects.get(event_type="pii.reveal_refused")
    assert refused.extra["refusal"] == "the consultation request is not assigned to this staff member"
    assert list(access.list_inquiries_for_staff(staff)) == []
    assert first.reference not in {i.reference for i in access.list_inquiries_for_staff(staff)}


def test_only_the_privacy_officer_assigns(alice, bob, carol, two, assign):
    first, _ = two
    assign(first.reference, alice)
    # Sales, on their own request: refused (403) and recorded; nothing changes.
    response = staff_client(alice).post(f"/backoffice/inquiries/{first.reference}/assign/", {"assignee": alice.pk})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert [e.extra["page"] for e in refusals(first.reference)] == ["inquiry_assign"]
    # The auditor's role holds no consultation requests at all: 404.
    response = staff_client(bob).post(f"/backoffice/inquiries/{first.reference}/assign/", {"assignee": bob.pk})
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert AuditEvent.objects.filter(event_type="inquiry.assigned").count() == 1  # the fixture's own
    # The officer may not give a request to a role that does not answer them (the auditor).
    response = staff_client(carol).post(f"/backoffice/inquiries/{first.reference}/assign/", {"assignee": bob.pk})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert Inquiry.objects.get(pk=first.pk).assigned_to == alice
