"""A child's data is seen only by the roles granted it, and each opening is audited (law CHD-03).

Through the console: a consultation request whose person is marked as a child's (a guardian's
consent was asked for, and given) is assigned to a sales consultant.  Sales, whose role is not
granted children's data, neither list it nor open it (404, the refusal recorded); the privacy
officer, whose role is, lists and opens it, and each opening and each reveal is in the audit log.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from piwarden.audit.models import AuditEvent, EventType
from piwarden.children.access import link_token
from piwarden.children.actions import confirm_guardian_consent, request_guardian_consent
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
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


def test_the_role_granted_it_opens_it_and_each_opening_and_reveal_is_audited(tmp_path: Path) -> None:
    inquiry = childs_request()
    officer = make_staff("olga", "privacy_officer", tmp_path)
    client = staff_client(officer)
    assert inquiry.reference in client.get("/backoffice/").content.decode()
    for _ in range(2):
        page = client.get(f"/backoffice/inquiries/{inquiry.reference}/")
        assert page.status_code == HTTPStatus.OK
        assert "A child's request" in page.content.decode() or "儿童的咨询请求" in page.content.decode()
    opened = AuditEvent.objects.filter(event_type=EventType.CHILD_DATA_OPENED, person=inquiry.person)
    assert [(e.actor_id, e.extra["about"]) for e in opened] == [(officer.pk, inquiry.reference)] * 2
    assert reveal(client, inquiry.reference).status_code == HTTPStatus.OK
    revealed = AuditEvent.objects.get(event_type=EventType.PII_REVEALED, person=inquiry.person)
    assert revealed.actor_id == officer.pk
    assert revealed.extra["child"] is True
    # A guardian consented: the flag (which would erase the data) is not offered, and is refused.
    assert 'id="flag-child-form"' not in page.content.decode()
    flagged = client.post(f"/backoffice/inquiries/{inquiry.reference}/flag-child/", {"confirm": "yes"})
    assert flagged.status_code == HTTPStatus.CONFLICT
