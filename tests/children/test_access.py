"""A child's data is seen only by the roles granted it, and each opening is audited (law CHD-03).

Through the console: a consultation request whose person is marked as a child's (a guardian's
consent was asked for, and given) is assigned to a sales consultant.  Sales, whose role is not
granted children's data, neither list it nor open it (404, the refusal recorded); the privacy
officer, whose role is, lists and opens it (each opening audited), but reveals its values only on an
approval ticket that a second person approved, time-limited, and the reveal's event names the
approver.  The audit log is not exported in bulk with entries about a child.
"""

from __future__ import annotations

import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from piwarden.audit.models import AuditEvent, EventType
from piwarden.children.access import link_token
from piwarden.children.actions import confirm_guardian_consent, request_guardian_consent
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.staff.models import AccessGrant
from piwarden.vault.blind import email_index
from tests.backoffice.test_staff_console import reveal, staff_client
from tests.conftest import consultation_data, make_staff

pytestmark = [pytest.mark.django_db, pytest.mark.duty("CHD-03")]


def person_with_address(sealed: dict[str, str]) -> Person:
    """The guardian's consent's hook: here the child is the person of the consultation request."""
    return Person.objects.get(email_index=email_index(sealed["email"]))


def childs_request() -> Inquiry:
    data = consultation_data(email="child.access@example.com", name="Xiaoming")
    assert Client().post("/en/consultation/", data).status_code == HTTPStatus.FOUND
    inquiry = Inquiry.objects.select_related("person").get()
    asked = request_guardian_consent(
        {"email": "child.access@example.com"}, "guardian.access@example.com", "en", on_consent=person_with_address
    )
    confirm_guardian_consent(link_token(asked), shown_text="I consent", language="en")
    return inquiry


def test_roles_without_childrens_data_neither_list_nor_open_it(tmp_path: Path, assign: Any) -> None:
    inquiry = childs_request()
    sales = make_staff("sam", "sales", tmp_path)
    assign(inquiry.reference, sales)
    client = staff_client(sales)
    assert inquiry.reference not in client.get("/backoffice/").content.decode()
    assert client.get(f"/backoffice/inquiries/{inquiry.reference}/").status_code == HTTPStatus.NOT_FOUND
    refused = AuditEvent.objects.filter(event_type=EventType.STAFF_ACCESS_REFUSED, actor=sales).latest("seq")
    assert refused.extra["refusal"] == "the role may not see children's data"
    assert not AuditEvent.objects.filter(event_type=EventType.CHILD_DATA_OPENED, actor=sales).exists()


TICKET = {"pair": "consultation:respond_inquiry", "reason": "Calling back the guardian about the quote", "hours": "2"}


def ask_ticket(client: Client, reference: str, **overrides: str) -> Any:
    data = {f"ticket-{k}": v for k, v in {**TICKET, **overrides}.items()}
    return client.post(f"/backoffice/inquiries/{reference}/child-ticket/", data)


def test_the_role_granted_it_opens_it_and_each_opening_is_audited_but_reveals_only_on_an_approved_ticket(
    tmp_path: Path,
) -> None:
    inquiry = childs_request()
    officer = make_staff("olga", "privacy_officer", tmp_path)
    approver = make_staff("peng", "privacy_officer", tmp_path)
    client = staff_client(officer)
    assert inquiry.reference in client.get("/backoffice/").content.decode()
    for _ in range(2):
        page = client.get(f"/backoffice/inquiries/{inquiry.reference}/")
        assert page.status_code == HTTPStatus.OK
        assert "A child's request" in page.content.decode() or "儿童的咨询请求" in page.content.decode()
        assert 'id="child-ticket-form"' in page.content.decode()
    opened = AuditEvent.objects.filter(event_type=EventType.CHILD_DATA_OPENED, person=inquiry.person)
    assert [(e.actor_id, e.extra["about"]) for e in opened] == [(officer.pk, inquiry.reference)] * 2

    # No ticket: refused, recorded, in the staff member's language (the form's durations too).
    for language, words, hours in (("zh-hans", "审批单", "2 小时"), ("en", "approval ticket", "2 h")):
        client.post("/backoffice/preferences/", {"language": language})
        refused = reveal(client, inquiry.reference)
        assert refused.status_code == HTTPStatus.FORBIDDEN
        assert words in refused.content.decode()
        assert f'<option value="2">{hours}</option>' in refused.content.decode()
    codes = AuditEvent.objects.filter(event_type=EventType.PII_REVEAL_REFUSED, actor=officer)
    assert {e.extra["refusal"] for e in codes} == {"a child's record without an approved ticket"}
    assert not AuditEvent.objects.filter(event_type=EventType.PII_REVEALED).exists()

    # The ticket: asked on the page, bad input refused, not approved by the one who asked.
    assert ask_ticket(client, inquiry.reference, reason="short").status_code == HTTPStatus.BAD_REQUEST
    assert ask_ticket(client, inquiry.reference).status_code == HTTPStatus.FOUND
    assert ask_ticket(client, inquiry.reference).status_code == HTTPStatus.CONFLICT  # asked already
    ticket = AccessGrant.objects.get(person=inquiry.person)
    assert (ticket.requester_id, ticket.status) == (officer.pk, AccessGrant.Status.REQUESTED)
    assert client.post(f"/backoffice/grants/{ticket.pk}/", {"action": "approve"}).status_code == HTTPStatus.CONFLICT
    assert reveal(client, inquiry.reference).status_code == HTTPStatus.FORBIDDEN  # requested, not approved
    second = staff_client(approver)
    grants_page = second.get("/backoffice/grants/").content.decode()
    assert f'data-grant="{ticket.pk}"' in grants_page
    assert "child-ticket" in grants_page
    assert second.post(f"/backoffice/grants/{ticket.pk}/", {"action": "approve"}).status_code == HTTPStatus.FOUND

    # Approved: the reveal works and its event names the ticket and the approver.
    assert reveal(client, inquiry.reference).status_code == HTTPStatus.OK
    revealed = AuditEvent.objects.get(event_type=EventType.PII_REVEALED, person=inquiry.person)
    assert revealed.actor_id == officer.pk
    assert (revealed.extra["child"], revealed.extra["tickets"], revealed.extra["approvers"]) == (
        True,
        [ticket.pk],
        [approver.pk],
    )
    # The ticket is this officer's, for this child: the approver holds none.
    assert reveal(second, inquiry.reference).status_code == HTTPStatus.FORBIDDEN
    # Time-limited: after its hours it opens nothing.
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=2, minutes=1)):
        assert reveal(staff_client(officer), inquiry.reference).status_code == HTTPStatus.FORBIDDEN
    # A guardian consented: the flag (which would erase the data) is not offered, and is refused.
    assert 'id="flag-child-form"' not in page.content.decode()
    flagged = client.post(f"/backoffice/inquiries/{inquiry.reference}/flag-child/", {"confirm": "yes"})
    assert flagged.status_code == HTTPStatus.CONFLICT


def test_a_ticket_is_only_for_a_childs_record_and_only_for_a_role_granted_childrens_data(
    tmp_path: Path, assign: Any
) -> None:
    inquiry = childs_request()
    sales = make_staff("sam", "sales", tmp_path)
    assign(inquiry.reference, sales)
    assert ask_ticket(staff_client(sales), inquiry.reference).status_code == HTTPStatus.NOT_FOUND
    adult = consultation_data(email="adult.access@example.com", name="Adult")
    assert Client().post("/en/consultation/", adult).status_code == HTTPStatus.FOUND
    other = Inquiry.objects.exclude(pk=inquiry.pk).get()
    officer = staff_client(make_staff("olga", "privacy_officer", tmp_path))
    assert ask_ticket(officer, other.reference).status_code == HTTPStatus.NOT_FOUND
    assert 'id="child-ticket-form"' not in officer.get(f"/backoffice/inquiries/{other.reference}/").content.decode()
    assert not AccessGrant.objects.exists()
    # An adult's request is revealed as before, without a ticket.
    assert reveal(officer, other.reference).status_code == HTTPStatus.OK


def test_the_audit_log_is_not_exported_in_bulk_with_entries_about_a_child(tmp_path: Path) -> None:
    inquiry = childs_request()
    auditor = staff_client(make_staff("ada", "auditor", tmp_path))
    for language, words in (("zh-hans", "不批量导出"), ("en", "not exported in bulk")):
        auditor.post("/backoffice/preferences/", {"language": language})
        refused = auditor.get("/backoffice/audit/export/")
        assert refused.status_code == HTTPStatus.FORBIDDEN
        assert words in refused.content.decode()
    assert not AuditEvent.objects.filter(event_type=EventType.AUDIT_EXPORTED).exists()
    recorded = AuditEvent.objects.filter(event_type=EventType.STAFF_ACCESS_REFUSED).latest("seq")
    assert recorded.extra["refusal"] == "bulk export of entries about children's data"
    # Narrowed to the one person, the export is allowed (and recorded).
    one = auditor.get(f"/backoffice/audit/export/?person={inquiry.person.reference}")
    assert one.status_code == HTTPStatus.OK
    assert AuditEvent.objects.filter(event_type=EventType.AUDIT_EXPORTED).count() == 1
