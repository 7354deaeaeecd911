"""Time-limited grants to personal data for the administrator, over HTTP, with time travel.

An administrator's role reveals nothing; a grant asked with a reason and approved by a second
staff member lets them reveal one category for one purpose through the ordinary read path until
it lapses by itself.  Every step is in the audit log.
"""

from __future__ import annotations

import datetime
import io
from http import HTTPStatus
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from piwarden.audit.models import AuditEvent, EventType
from piwarden.inquiries.models import Inquiry
from piwarden.staff.models import AccessGrant
from tests.conftest import make_staff, sign_in

pytestmark = pytest.mark.django_db

GRANTS = "/backoffice/grants/"
REASON = "Checking a failed acknowledgement e-mail for the sales team"
PAIR = "consultation:respond_inquiry"


@pytest.fixture
def dora(tmp_path: Path) -> User:
    """Administrator."""
    return make_staff("dora", "admin", tmp_path)


@pytest.fixture
def inquiry(submit) -> Inquiry:
    assert submit(name="Grant Canary Person").status_code == HTTPStatus.FOUND
    return Inquiry.objects.get()


def staff_client(user: User) -> Client:
    client = Client()
    response = sign_in(client, user)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    return client


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("id"))


def ask(client: Client, **overrides: object):
    data = {"pair": PAIR, "reason": REASON, "hours": "2", **overrides}
    return client.post(GRANTS, data, headers={"accept-language": "en"})


def decide(client: Client, grant: AccessGrant, action: str):
    return client.post(f"{GRANTS}{grant.pk}/", {"action": action}, headers={"accept-language": "en"})


def reveal(client: Client, inquiry: Inquiry):
    data = {"purpose": "respond_inquiry", "field_names": ["name"], "reason": REASON}
    return client.post(f"/backoffice/inquiries/{inquiry.reference}/", data)


def test_a_grant_is_asked_approved_used_and_lapses_by_itself(dora, carol, inquiry):
    admin = staff_client(dora)
    # The administrator's role reveals nothing: the inquiry does not exist for her.
    assert admin.get(f"/backoffice/inquiries/{inquiry.reference}/").status_code == HTTPStatus.NOT_FOUND
    assert reveal(admin, inquiry).status_code == HTTPStatus.NOT_FOUND

    assert ask(admin).status_code == HTTPStatus.FOUND
    grant = AccessGrant.objects.get()
    assert (grant.requester, grant.status, grant.hours) == (dora, AccessGrant.Status.REQUESTED, 2)
    [requested] = events(EventType.GRANT_REQUESTED)
    assert (requested.actor_id, requested.purpose, requested.reason) == (dora.pk, "respond_inquiry", REASON)
    assert requested.extra == {"grant": grant.pk, "category": "consultation", "hours": 2}
    # Asked is not allowed: still nothing to see.
    assert reveal(admin, inquiry).status_code == HTTPStatus.NOT_FOUND

    officer = staff_client(carol)
    page = officer.get(GRANTS, headers={"accept-language": "en"}).content.decode()
    assert f'data-grant="{grant.pk}"' in page
    assert REASON in page
    assert decide(officer, grant, "approve").status_code == HTTPStatus.FOUND
    grant.refresh_from_db()
    assert grant.status == AccessGrant.Status.APPROVED
    assert grant.decided_by == carol
    assert grant.expires_at is not None
    assert grant.expires_at - grant.decided_at == datetime.timedelta(hours=2)  # type: ignore[operator]
    [approved] = events(EventType.GRANT_APPROVED)
    assert (approved.actor_id, approved.extra["requester"], approved.extra["grant"]) == (carol.pk, dora.pk, grant.pk)

    # Now the one read path lets her reveal, and the reveal names the grant it rests on.
    assert admin.get("/backoffice/").status_code == HTTPStatus.OK
    shown = reveal(admin, inquiry)
    assert shown.status_code == HTTPStatus.OK
    assert "Grant Canary Person" in shown.content.decode()
    [revealed] = events(EventType.PII_REVEALED)
    assert revealed.actor_id == dora.pk
    assert revealed.extra["grants"] == [grant.pk]
    # Only for the granted purpose.
    other = admin.post(
        f"/backoffice/inquiries/{inquiry.reference}/",
        {"purpose": "answer_rights_request", "field_names": ["name"], "reason": REASON},
    )
    assert other.status_code == HTTPStatus.FORBIDDEN

    # Two hours and a minute later the grant counts no more, without anyone doing anything.
    later = timezone.now() + datetime.timedelta(hours=2, minutes=1)
    with time_machine.travel(later, tick=True):
        admin_later = staff_client(dora)  # the earlier session idled out
        assert reveal(admin_later, inquiry).status_code == HTTPStatus.NOT_FOUND
        assert admin_later.get(f"/backoffice/inquiries/{inquiry.reference}/").status_code == HTTPStatus.NOT_FOUND
        assert events(EventType.GRANT_EXPIRED) == []
        # Opening the grants page writes the expiry down.
        page = admin_later.get(GRANTS, headers={"accept-language": "en"}).content.decode()
        assert "Expired" in page
    grant.refresh_from_db()
    assert grant.status == AccessGrant.Status.EXPIRED
    [expired] = events(EventType.GRANT_EXPIRED)
    assert (expired.actor_id, expired.extra["grant"], expired.extra["requester"]) == (None, grant.pk, dora.pk)
    assert len(events(EventType.PII_REVEALED)) == 1


def test_a_declined_request_allows_nothing(dora, carol, inquiry):
    admin, officer = staff_client(dora), staff_client(carol)
    ask(admin)
    grant = AccessGrant.objects.get()
    assert decide(officer, grant, "decline").status_code == HTTPStatus.FOUND
    grant.refresh_from_db()
    assert grant.status == AccessGrant.Status.DECLINED
    assert grant.expires_at is None
    assert [e.actor_id for e in events(EventType.GRANT_DECLINED)] == [carol.pk]
    assert reveal(admin, inquiry).status_code == HTTPStatus.NOT_FOUND
    # A decided request is not decided again.
    again = decide(officer, grant, "approve")
    assert again.status_code == HTTPStatus.CONFLICT
    assert "already been decided" in again.content.decode()
    grant.refresh_from_db()
    assert grant.status == AccessGrant.Status.DECLINED


def test_no_one_decides_their_own_request(dora, carol, declared):
    """A declaration that lets one role both ask and approve still needs a second person."""
    text = (Path(__file__).resolve().parents[2] / "policy" / "declaration.toml").read_text(encoding="utf-8")
    declared(text.replace("manage_staff = true\n", "manage_staff = true\napprove_grants = true\n"))
    admin = staff_client(dora)
    ask(admin)
    grant = AccessGrant.objects.get()
    response = decide(admin, grant, "approve")
    assert response.status_code == HTTPStatus.CONFLICT
    assert "A second person must decide your own request." in response.content.decode()
    grant.refresh_from_db()
    assert grant.status == AccessGrant.Status.REQUESTED
    [refused] = events(EventType.GRANT_REFUSED)
    assert (refused.actor_id, refused.extra["refusal"]) == (dora.pk, "may not decide one's own request")
    assert decide(staff_client(carol), grant, "approve").status_code == HTTPStatus.FOUND


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_roles_that_neither_ask_nor_decide_hear_404(request, dora, persona):
    admin = staff_client(dora)
    ask(admin)
    grant = AccessGrant.objects.get()
    other = staff_client(request.getfixturevalue(persona))
    assert other.get(GRANTS).status_code == HTTPStatus.NOT_FOUND
    assert ask(other).status_code == HTTPStatus.NOT_FOUND
    assert decide(other, grant, "approve").status_code == HTTPStatus.NOT_FOUND
    grant.refresh_from_db()
    assert grant.status == AccessGrant.Status.REQUESTED
    assert AccessGrant.objects.count() == 1
    refused = events(EventType.STAFF_ACCESS_REFUSED)
    assert len(refused) == 3
    assert {e.extra["page"] for e in refused} == {"grants"}


def test_the_approver_may_not_ask_and_the_requester_may_not_approve(dora, carol):
    officer = staff_client(carol)
    assert officer.get(GRANTS).status_code == HTTPStatus.OK
    assert ask(officer).status_code == HTTPStatus.NOT_FOUND
    admin = staff_client(dora)
    ask(admin)
    grant = AccessGrant.objects.get()
    assert decide(admin, grant, "approve").status_code == HTTPStatus.NOT_FOUND
    grant.refresh_from_db()
    assert grant.status == AccessGrant.Status.REQUESTED


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"hours": "9"}, HTTPStatus.BAD_REQUEST),  # eight hours at most
        ({"hours": "0"}, HTTPStatus.BAD_REQUEST),
        ({"reason": "short"}, HTTPStatus.BAD_REQUEST),
        ({"pair": "rights_requests:answer_rights_request"}, HTTPStatus.BAD_REQUEST),  # not grantable to admin
        ({"pair": "consultation:security"}, HTTPStatus.BAD_REQUEST),
    ],
)
def test_a_request_outside_the_rules_is_refused(dora, overrides, status):
    assert ask(staff_client(dora), **overrides).status_code == status
    assert not AccessGrant.objects.exists()


def test_one_open_request_per_category_and_purpose(dora):
    admin = staff_client(dora)
    assert ask(admin).status_code == HTTPStatus.FOUND
    again = ask(admin)
    assert again.status_code == HTTPStatus.CONFLICT
    assert AccessGrant.objects.count() == 1
    assert [e.extra["refusal"] for e in events(EventType.GRANT_REFUSED)] == ["already asked"]


def test_a_change_of_role_ends_a_grant_at_once(dora, carol, inquiry, tmp_path):
    eve = make_staff("eve", "admin", tmp_path)
    admin = staff_client(dora)
    ask(admin)
    decide(staff_client(carol), AccessGrant.objects.get(), "approve")
    assert reveal(admin, inquiry).status_code == HTTPStatus.OK
    other_admin = staff_client(eve)
    assert other_admin.post(f"/backoffice/staff/{dora.pk}/", {"action": "role", "role": "auditor"}).status_code == 302
    assert reveal(admin, inquiry).status_code == HTTPStatus.NOT_FOUND


def test_a_suspended_requester_cannot_be_granted(dora, carol, tmp_path):
    eve = make_staff("eve", "admin", tmp_path)
    ask(staff_client(dora))
    grant = AccessGrant.objects.get()
    staff_client(eve).post(f"/backoffice/staff/{dora.pk}/", {"action": "suspend"})
    assert decide(staff_client(carol), grant, "approve").status_code == HTTPStatus.CONFLICT
    grant.refresh_from_db()
    assert grant.status == AccessGrant.Status.REQUESTED


def test_the_hourly_housekeeping_writes_down_lapsed_grants(dora, carol):
    ask(staff_client(dora), hours="1")
    grant = AccessGrant.objects.get()
    decide(staff_client(carol), grant, "approve")
    out = io.StringIO()
    call_command("housekeeping", "--once", stdout=out, stderr=out)
    assert "access grants past their end: 0 marked expired" in out.getvalue()
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=1, seconds=1), tick=True):
        out = io.StringIO()
        call_command("housekeeping", "--once", stdout=out, stderr=out)
    assert "access grants past their end: 1 marked expired" in out.getvalue()
    grant.refresh_from_db()
    assert grant.status == AccessGrant.Status.EXPIRED
    assert [e.extra["grant"] for e in events(EventType.GRANT_EXPIRED)] == [grant.pk]
