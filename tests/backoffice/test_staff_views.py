"""The administrator's staff page over HTTP: create (with the e-mailed enrolment), suspend,
reactivate, change role; the refusals for every other role; the rules an administrator cannot
break (themselves, the last administrator).

Everything goes through a real signed-in staff client (password + TOTP), a real SMTP server and
the real task; assertions are on what the page and the sign-in do, and on the audit log.
"""

from __future__ import annotations

import re
import time
from http import HTTPStatus
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import AuditEvent, EventType
from piwarden.staff import actions
from piwarden.staff.models import Authenticator
from tests.conftest import STAFF_PASSWORD, current_code, make_staff, sign_in

pytestmark = pytest.mark.django_db

STAFF = "/backoffice/staff/"


@pytest.fixture
def dora(tmp_path: Path) -> User:
    """Administrator: manages staff accounts; no personal data without a grant."""
    return make_staff("dora", "admin", tmp_path)


def staff_client(user: User) -> Client:
    client = Client()
    response = sign_in(client, user)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    return client


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("id"))


def change(client: Client, user: User, action: str, **data: str):
    return client.post(f"{STAFF}{user.pk}/", {"action": action, **data}, headers={"accept-language": "en"})


def run_staff_tasks() -> list[str]:
    """Run the queued staff tasks as the worker would."""
    outcomes = []
    for job in DBTaskResult.objects.filter(task_path__startswith="piwarden.staff.").order_by("enqueued_at", "id"):
        task = import_string(job.task_path)
        outcomes.append(task.call(*job.args_kwargs["args"], **job.args_kwargs["kwargs"]))
        job.delete()
    return outcomes


# --- who may open the page ----------------------------------------------------------------


def test_the_administrator_sees_every_staff_member_with_role_status_and_last_sign_in(dora, alice, bob):
    client = staff_client(dora)
    response = client.get(STAFF, headers={"accept-language": "en"})
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    for name in ("dora", "alice", "bob"):
        assert f'data-username="{name}"' in page
    assert "Sales and consulting" in page
    assert "Security auditor" in page
    assert "Administrator" in page
    assert "never" in page  # alice and bob have not signed in yet
    assert 'href="/backoffice/staff/"' in page  # the administrator's console links to the page
    assert response["Cache-Control"].endswith("private, no-store")


def test_the_page_speaks_chinese_by_default(dora):
    page = staff_client(dora).get(STAFF, headers={"accept-language": "zh-CN"}).content.decode()
    assert "新员工" in page
    assert "最近登录" in page
    assert "系统管理员" in page
    assert "暂停</button>" not in page  # the only account is her own: nothing to suspend


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
def test_every_other_role_hears_404_and_the_refusal_is_recorded(request, dora, persona):
    other: User = request.getfixturevalue(persona)
    client = staff_client(other)
    assert client.get(STAFF).status_code == HTTPStatus.NOT_FOUND
    assert 'href="/backoffice/staff/"' not in client.get("/backoffice/preferences/").content.decode()
    assert change(client, dora, "suspend").status_code == HTTPStatus.NOT_FOUND
    assert change(client, dora, "role", role="sales").status_code == HTTPStatus.NOT_FOUND
    assert change(client, dora, "nonsense").status_code == HTTPStatus.NOT_FOUND
    created = client.post(STAFF, {"username": "mallory", "email": "m@example.com", "role": "privacy_officer"})
    assert created.status_code == HTTPStatus.NOT_FOUND
    dora.refresh_from_db()
    assert dora.is_active
    assert list(dora.groups.values_list("name", flat=True)) == ["admin"]
    assert not User.objects.filter(username="mallory").exists()
    refused = events(EventType.STAFF_ACCESS_REFUSED)
    assert len(refused) == 5
    assert {e.actor_id for e in refused} == {other.pk}
    assert {e.extra["page"] for e in refused} == {"staff"}


def test_anonymous_visitors_are_sent_to_sign_in(client, dora):
    response = client.get(STAFF)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/backoffice/login/")
    assert change(client, dora, "suspend").status_code == HTTPStatus.FOUND
    dora.refresh_from_db()
    assert dora.is_active


# --- creating a staff member: the enrolment link is e-mailed ---------------------------------


def test_a_new_staff_member_enrols_through_the_emailed_link_and_signs_in(dora, smtp):
    admin = staff_client(dora)
    response = admin.post(STAFF, {"username": "erin", "email": "erin@example.com", "role": "sales"})
    assert response.status_code == HTTPStatus.FOUND
    erin = User.objects.get(username="erin")
    assert erin.is_staff
    assert erin.is_active
    assert not erin.has_usable_password()
    assert list(erin.groups.values_list("name", flat=True)) == ["sales"]
    device = Authenticator.objects.get(user=erin)
    assert not device.confirmed
    invited = events(EventType.STAFF_INVITED)
    assert [(e.actor_id, e.extra["role"], e.extra["staff"]) for e in invited] == [(dora.pk, "sales", erin.pk)]
    # The administrator sees no secret and no link: only that the account awaits enrolment.
    page = admin.get(STAFF + "?done=invited", headers={"accept-language": "en"}).content.decode()
    assert "otpauth" not in page
    assert "/backoffice/enrol/" not in page
    assert "Awaiting enrolment" in page

    # Before enrolment there is no password that signs in.
    assert sign_in(Client(), erin).status_code == HTTPStatus.BAD_REQUEST

    assert run_staff_tasks() == ["sent"]
    [message] = smtp.collector.received
    assert message.rcpt_tos == ["erin@example.com"]
    link = re.search(r"https?://\S+(/backoffice/enrol/\S+/)", message.body)
    assert link is not None, message.body
    assert "otpauth" not in message.body  # the e-mail carries the link, never the secret
    path = link.group(1)

    newcomer = Client()
    opened = newcomer.get(path, headers={"accept-language": "en"})
    assert opened.status_code == HTTPStatus.OK
    assert "<svg" in opened.content.decode()
    assert "otpauth://totp/" in opened.content.decode()
    assert opened["Referrer-Policy"] == "no-referrer"
    wrong = newcomer.post(path, {"password1": STAFF_PASSWORD, "password2": STAFF_PASSWORD, "otp_token": "000000"})
    assert wrong.status_code == HTTPStatus.BAD_REQUEST
    erin.refresh_from_db()
    assert not erin.has_usable_password()
    time.sleep(1.1)  # a failed code throttles the authenticator for a second, as at sign-in
    weak = newcomer.post(path, {"password1": "erin", "password2": "erin", "otp_token": current_code(erin)})
    assert weak.status_code == HTTPStatus.BAD_REQUEST
    done = newcomer.post(
        path, {"password1": STAFF_PASSWORD, "password2": STAFF_PASSWORD, "otp_token": current_code(erin)}
    )
    assert done.status_code == HTTPStatus.FOUND
    assert done["Location"].startswith("/backoffice/login/")
    assert Authenticator.objects.get(user=erin).confirmed
    assert [e.actor_id for e in events(EventType.STAFF_ENROLLED)] == [erin.pk]

    # The link works once.
    assert Client().get(path).status_code == HTTPStatus.NOT_FOUND
    welcome = Client().get(done["Location"], headers={"accept-language": "en"}).content.decode()
    assert "Your account is ready." in welcome
    # And the new member signs in with their own password and the next code.
    erin_client = Client()
    assert sign_in(erin_client, erin).status_code == HTTPStatus.FOUND
    assert erin_client.get("/backoffice/").status_code == HTTPStatus.OK


def test_a_new_link_can_be_sent_until_the_person_enrols(dora, alice, smtp):
    admin = staff_client(dora)
    admin.post(STAFF, {"username": "erin", "email": "erin@example.com", "role": "sales"})
    erin = User.objects.get(username="erin")
    page = admin.get(STAFF, headers={"accept-language": "en"}).content.decode()
    assert page.count("E-mail a new link") == 1  # erin's row only: alice has enrolled
    assert change(admin, erin, "resend").status_code == HTTPStatus.FOUND
    assert run_staff_tasks() == ["sent", "sent"]
    assert [m.rcpt_tos for m in smtp.collector.received] == [["erin@example.com"], ["erin@example.com"]]
    assert [e.extra["staff"] for e in events(EventType.STAFF_ENROLMENT_RESENT)] == [erin.pk]
    refused = change(admin, alice, "resend")
    assert refused.status_code == HTTPStatus.CONFLICT
    assert run_staff_tasks() == []
    assert [e.extra["refusal"] for e in events(EventType.STAFF_CHANGE_REFUSED)] == ["not awaiting enrolment"]


def test_a_tampered_or_suspended_link_opens_nothing(dora, smtp):
    admin = staff_client(dora)
    admin.post(STAFF, {"username": "erin", "email": "erin@example.com", "role": "sales"})
    run_staff_tasks()
    path = re.search(r"(/backoffice/enrol/\S+/)", smtp.collector.received[0].body).group(1)  # type: ignore[union-attr]
    assert Client().get(path[:-3] + "xx/").status_code == HTTPStatus.NOT_FOUND
    erin = User.objects.get(username="erin")
    assert change(admin, erin, "suspend").status_code == HTTPStatus.FOUND
    assert Client().get(path).status_code == HTTPStatus.NOT_FOUND


def test_a_taken_user_name_or_unknown_role_creates_nothing(dora, alice):
    admin = staff_client(dora)
    taken = admin.post(STAFF, {"username": "alice", "email": "a2@example.com", "role": "sales"})
    assert taken.status_code == HTTPStatus.BAD_REQUEST
    unknown = admin.post(STAFF, {"username": "zed", "email": "z@example.com", "role": "root"})
    assert unknown.status_code == HTTPStatus.BAD_REQUEST
    assert not User.objects.filter(username="zed").exists()
    assert [e.extra["refusal"] for e in events(EventType.STAFF_CHANGE_REFUSED)] == ["user name taken"]


# --- suspend, reactivate, change role ------------------------------------------------------


def test_suspending_ends_the_sessions_at_once_and_reactivating_lets_them_back(dora, alice):
    admin, sales = staff_client(dora), staff_client(alice)
    assert sales.get("/backoffice/").status_code == HTTPStatus.OK
    assert change(admin, alice, "suspend").status_code == HTTPStatus.FOUND
    alice.refresh_from_db()
    assert not alice.is_active
    # Her open session is gone: the very next request is sent to sign in.
    response = sales.get("/backoffice/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/backoffice/login/")
    assert all(s.get_decoded().get("_auth_user_id") != str(alice.pk) for s in Session.objects.all())
    assert sign_in(Client(), alice).status_code == HTTPStatus.BAD_REQUEST
    [suspended] = events(EventType.STAFF_SUSPENDED)
    assert suspended.actor_id == dora.pk
    assert suspended.extra["staff"] == alice.pk
    assert suspended.extra["sessions_ended"] == 1
    page = admin.get(STAFF, headers={"accept-language": "en"}).content.decode()
    assert "Suspended" in page
    assert "Reactivate" in page

    assert change(admin, alice, "reactivate").status_code == HTTPStatus.FOUND
    assert [e.extra["staff"] for e in events(EventType.STAFF_REACTIVATED)] == [alice.pk]
    assert sign_in(Client(), alice).status_code == HTTPStatus.FOUND


def test_an_administrator_cannot_suspend_or_change_themselves(dora):
    admin = staff_client(dora)
    response = change(admin, dora, "suspend")
    assert response.status_code == HTTPStatus.CONFLICT
    assert "You cannot suspend your own account." in response.content.decode()
    response = change(admin, dora, "role", role="privacy_officer")
    assert response.status_code == HTTPStatus.CONFLICT
    dora.refresh_from_db()
    assert dora.is_active
    assert list(dora.groups.values_list("name", flat=True)) == ["admin"]
    assert admin.get(STAFF).status_code == HTTPStatus.OK  # still signed in, still an administrator
    refusals = [e.extra["refusal"] for e in events(EventType.STAFF_CHANGE_REFUSED)]
    assert refusals == ["may not suspend oneself", "may not change one's own role"]


def test_changing_a_role_changes_what_the_next_request_may_open(dora, alice):
    admin, sales = staff_client(dora), staff_client(alice)
    assert sales.get("/backoffice/rights/").status_code == HTTPStatus.NOT_FOUND
    assert change(admin, alice, "role", role="privacy_officer").status_code == HTTPStatus.FOUND
    assert list(alice.groups.values_list("name", flat=True)) == ["privacy_officer"]
    assert sales.get("/backoffice/rights/").status_code == HTTPStatus.OK
    [changed] = events(EventType.STAFF_ROLE_CHANGED)
    assert (changed.actor_id, changed.extra) == (dora.pk, {"staff": alice.pk, "from": "sales", "to": "privacy_officer"})
    unknown = change(admin, alice, "role", role="root")
    assert unknown.status_code == HTTPStatus.CONFLICT
    assert list(alice.groups.values_list("name", flat=True)) == ["privacy_officer"]


def test_the_last_administrator_cannot_be_removed(dora, tmp_path):
    """Self-changes are refused, so on the page another administrator always remains; the write
    path keeps the rule anyway (two administrators removing each other at once)."""
    eve = make_staff("eve", "admin", tmp_path)
    admin = staff_client(dora)
    assert change(admin, eve, "role", role="auditor").status_code == HTTPStatus.FOUND
    # Now dora is the only administrator: the rule, asked directly of the write path as eve would.
    with pytest.raises(actions.StaffChangeRefused) as refused:
        actions._suspend(eve, dora.pk)
    assert refused.value.code == "the last administrator"
    with pytest.raises(actions.StaffChangeRefused):
        actions._change_role(eve, dora.pk, "sales")
    dora.refresh_from_db()
    assert dora.is_active


def test_an_unknown_action_or_account_is_refused(dora):
    admin = staff_client(dora)
    assert change(admin, dora, "nonsense").status_code == HTTPStatus.BAD_REQUEST
    assert admin.post(f"{STAFF}999999/", {"action": "suspend"}).status_code == HTTPStatus.NOT_FOUND
