"""The staff console (DESIGN invariant 4): TOTP sign-in, masked by default, purpose-bound reveal, audit.

Everything goes through real HTTP (the Django test client) and the real
``createstaff`` command; the assertions are on the privacy property itself —
what a page contains, which events the log holds, whether the chain verifies.
"""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from piwarden.audit import appendonly
from piwarden.audit.chain import CHECKPOINT_EVERY, checkpoint, seal
from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.consent.actions import withdraw_consent
from piwarden.inquiries.models import Inquiry
from piwarden.people.actions import shred_person
from piwarden.policy.declaration import load_declaration, region_name
from piwarden.staff import access
from piwarden.staff.models import Authenticator
from piwarden.vault.crypto import forget_cached_keys
from tests.conftest import STAFF_PASSWORD, current_code, make_staff, sign_in

pytestmark = pytest.mark.django_db

REASON = "Calling back about the quote"
LOGIN = "/backoffice/login/"


# --- helpers ----------------------------------------------------------------


@pytest.fixture
def canary(submit) -> dict[str, str]:
    """A consultation whose name, e-mail and company appear nowhere else in the test run."""
    tag = uuid.uuid4().hex[:12]
    values = {
        "name": f"Canary Person {tag}",
        "email": f"canary-{tag}@example.com",
        "company": f"Canary Works {tag} Ltd",
    }
    response = submit(**values)
    assert response.status_code == HTTPStatus.FOUND
    return values


@pytest.fixture
def inquiry(canary, alice, assign) -> Inquiry:
    """The canary's request, assigned to alice (sales see only the requests assigned to them)."""
    assign(Inquiry.objects.get().reference, alice)
    return Inquiry.objects.select_related("person").get()


def staff_client(user: User) -> Client:
    client = Client()
    response = sign_in(client, user)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    return client


def reveal(client: Client, reference: str, **overrides) -> object:
    data = {"purpose": "respond_inquiry", "field_names": ["name", "email"], "reason": REASON}
    data.update(overrides)
    return client.post(f"/backoffice/inquiries/{reference}/", data)


def redirects_to_login(response) -> bool:
    return response.status_code == HTTPStatus.FOUND and urlsplit(response["Location"]).path == LOGIN


def events(event_type: str):
    return AuditEvent.objects.filter(event_type=event_type)


def login_error_codes(response) -> set[str]:
    return {e.code for errors in response.context["form"].errors.as_data().values() for e in errors}


# --- sign-in: password AND the current TOTP code ------------------------------


@pytest.mark.duty("SEC-01")
def test_right_password_with_wrong_code_is_refused(client, alice):
    good = current_code(alice)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    response = client.post(LOGIN, {"username": "alice", "password": STAFF_PASSWORD, "otp_token": wrong})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert login_error_codes(response) == {"invalid_login"}  # the same answer as a wrong password
    assert redirects_to_login(client.get("/backoffice/"))
    assert not events("staff.signed_in").exists()


@pytest.mark.duty("SEC-01")
def test_right_password_without_code_is_refused(client, alice):
    response = client.post(LOGIN, {"username": "alice", "password": STAFF_PASSWORD})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "required" in login_error_codes(response)
    assert redirects_to_login(client.get("/backoffice/"))
    response = client.post(LOGIN, {"username": "alice", "password": STAFF_PASSWORD, "otp_token": ""})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert redirects_to_login(client.get("/backoffice/"))


def test_wrong_password_with_right_code_is_refused(client, alice):
    response = client.post(
        LOGIN, {"username": "alice", "password": "not the password", "otp_token": current_code(alice)}
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert login_error_codes(response) == {"invalid_login"}
    assert redirects_to_login(client.get("/backoffice/"))


def test_a_password_session_without_totp_is_not_enough(client, alice):
    """A session that skipped the second factor (e.g. some other login path) never reaches the console."""
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    assert redirects_to_login(client.get("/backoffice/"))


@pytest.mark.duty("SEC-02")
def test_password_and_code_sign_in_and_are_audited(client, alice):
    response = sign_in(client, alice)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/backoffice/"
    inbox = client.get("/backoffice/")
    assert inbox.status_code == HTTPStatus.OK
    event = events("staff.signed_in").get()
    assert event.actor == alice
    assert STAFF_PASSWORD not in str(event.extra)


def test_the_next_parameter_cannot_send_staff_off_site(client, alice):
    response = client.post(
        LOGIN + "?next=https://evil.example/steal",
        {"username": "alice", "password": STAFF_PASSWORD, "otp_token": current_code(alice)},
    )
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/backoffice/"


def test_a_replayed_code_is_refused(client, alice):
    code = current_code(alice)
    first = client.post(LOGIN, {"username": "alice", "password": STAFF_PASSWORD, "otp_token": code})
    assert first.status_code == HTTPStatus.FOUND
    client.post("/backoffice/logout/")
    assert redirects_to_login(client.get("/backoffice/"))
    # The same code a second time (within its 30-second step, or just after: spent either way).
    again = client.post(LOGIN, {"username": "alice", "password": STAFF_PASSWORD, "otp_token": code})
    assert again.status_code == HTTPStatus.BAD_REQUEST
    assert login_error_codes(again) == {"invalid_login"}
    assert redirects_to_login(client.get("/backoffice/"))
    assert events("staff.signed_in").count() == 1


@pytest.mark.duty("SEC-01")
def test_repeated_failures_lock_the_account_out(client, alice):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(LOGIN, {"username": "alice", "password": "guess " + uuid.uuid4().hex, "otp_token": "0"})
        assert response.status_code in {HTTPStatus.BAD_REQUEST, HTTPStatus.TOO_MANY_REQUESTS}
    # Now even the right password and the right code are refused.
    response = client.post(LOGIN, {"username": "alice", "password": STAFF_PASSWORD, "otp_token": current_code(alice)})
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS  # django-axes' lockout answer
    assert redirects_to_login(client.get("/backoffice/"))
    assert not events("staff.signed_in").exists()
    assert "登录已暂停" in response.content.decode()  # explained in the staff member's language


def test_sign_out_ends_the_session_and_is_audited(client, alice):
    sign_in(client, alice)
    signed_in_key = client.session.session_key
    assert Session.objects.filter(session_key=signed_in_key).exists()
    response = client.post("/backoffice/logout/")
    assert redirects_to_login(response)
    assert redirects_to_login(client.get("/backoffice/"))
    assert events("staff.signed_out").get().actor == alice
    assert not Session.objects.filter(session_key=signed_in_key).exists()  # deleted, not just forgotten


# --- createstaff -----------------------------------------------------------------


def _createstaff(tmp_path: Path, username: str, role: str, password: str = STAFF_PASSWORD) -> str:
    secret = tmp_path / f"{username}-{uuid.uuid4().hex}.pw"
    secret.write_text(password)
    out = io.StringIO()
    call_command("createstaff", username, role=role, password_file=secret, stdout=out)
    return out.getvalue()


@pytest.mark.duty("SEC-02")
def test_createstaff_is_the_only_way_to_make_a_staff_account(db):
    """Django's createsuperuser would make an unaudited account with no role and no authenticator."""
    with pytest.raises(CommandError, match="createstaff"):
        call_command("createsuperuser", "--noinput", username="root", email="root@example.com")
    assert not User.objects.exists()
    assert not AuditEvent.objects.exists()


def test_createstaff_prints_an_otpauth_uri_and_a_qr_code(db, tmp_path):
    output = _createstaff(tmp_path, "dora", "sales")
    uri = next(line for line in output.splitlines() if line.startswith("otpauth://"))
    parts = urlsplit(uri)
    assert parts.netloc == "totp"
    assert "dora" in parts.path
    query = parse_qs(parts.query)
    device = Authenticator.objects.get(user__username="dora")
    secret = query["secret"][0]
    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) == device.bin_key
    assert query["digits"] == ["6"]
    # The QR code is drawn with block characters, several lines of it.
    qr_lines = [line for line in output.splitlines() if "█" in line or "▀" in line or "▄" in line]
    assert len(qr_lines) >= 10
    assert STAFF_PASSWORD not in output


def test_createstaff_makes_staff_with_the_role_and_one_confirmed_device(db, tmp_path):
    _createstaff(tmp_path, "erin", "privacy_officer")
    user = User.objects.get(username="erin")
    assert user.is_staff
    assert not user.is_superuser
    assert user.check_password(STAFF_PASSWORD)
    assert list(user.groups.values_list("name", flat=True)) == ["privacy_officer"]
    devices = Authenticator.objects.filter(user=user)
    assert devices.count() == 1
    assert devices.get().confirmed
    event = events("staff.created").get()
    assert event.extra == {"username": "erin", "role": "privacy_officer"}
    assert STAFF_PASSWORD not in str(event.extra) + event.reason


@pytest.mark.parametrize(
    ("username", "weak"),
    [
        ("frank", "password"),  # common
        ("frank", "short1!"),  # shorter than 12
        ("frank", "12345678901234"),  # all digits
        ("frankenstein", "frankenstein1"),  # the username again
    ],
)
def test_createstaff_rejects_a_weak_password(db, tmp_path, username, weak):
    with pytest.raises(CommandError, match="Password rejected"):
        _createstaff(tmp_path, username, "sales", password=weak)
    assert not User.objects.filter(username=username).exists()
    assert not Authenticator.objects.exists()
    assert not events("staff.created").exists()


def test_createstaff_rejects_an_unknown_role(db, tmp_path):
    with pytest.raises(CommandError, match="invalid choice"):
        _createstaff(tmp_path, "gina", "superuser")
    assert not User.objects.filter(username="gina").exists()
    assert not Group.objects.filter(name="superuser").exists()


def test_createstaff_rejects_a_duplicate_username(alice, tmp_path):
    with pytest.raises(CommandError, match="already exists"):
        _createstaff(tmp_path, "alice", "auditor")
    assert list(alice.groups.values_list("name", flat=True)) == ["sales"]
    assert Authenticator.objects.filter(user=alice).count() == 1
    assert events("staff.created").count() == 1


# --- masked by default (invariant 4) -------------------------------------------------


@pytest.mark.duty("SEC-02")
def test_inbox_and_detail_show_no_personal_data(alice, canary, inquiry):
    staff = staff_client(alice)
    inbox = staff.get("/backoffice/")
    detail = staff.get(f"/backoffice/inquiries/{inquiry.reference}/")
    assert inbox.status_code == HTTPStatus.OK
    assert detail.status_code == HTTPStatus.OK
    assert inquiry.reference in inbox.content.decode()
    for page in (inbox, detail):
        body = page.content.decode()
        for value in [*canary.values(), "13800138000", "信息安全经理"]:
            assert value not in body
        assert "••••••" in body
    assert not events("pii.revealed").exists()


def test_listing_and_opening_do_not_unwrap_any_data_key(alice, inquiry):
    staff = staff_client(alice)
    for url in ("/backoffice/", f"/backoffice/inquiries/{inquiry.reference}/"):
        forget_cached_keys()
        with CaptureQueriesContext(connection) as queries:
            response = staff.get(url)
        assert response.status_code == HTTPStatus.OK
        assert queries.captured_queries, "the capture saw the request's queries"
        touched = [q["sql"] for q in queries.captured_queries if "vault_datakey" in q["sql"].lower()]
        assert touched == [], f"{url} read data keys: {touched}"


def test_the_inbox_does_not_load_personal_columns(alice, inquiry):
    staff = staff_client(alice)
    with CaptureQueriesContext(connection) as queries:
        staff.get("/backoffice/")
    inbox_queries = [q["sql"].lower() for q in queries.captured_queries if "inquiries_inquiry" in q["sql"].lower()]
    assert inbox_queries
    for sql in inbox_queries:
        for column in ("name", "email", "company", "phone", "position"):
            assert f'"inquiries_inquiry"."{column}"' not in sql


# --- reveal: explicit, purpose-bound, audited ---------------------------------------------


@pytest.mark.duty("SEC-02")
def test_reveal_shows_the_chosen_fields_and_records_who_whom_what_why(alice, canary, inquiry):
    staff = staff_client(alice)
    response = reveal(staff, inquiry.reference)
    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert canary["name"] in body
    assert canary["email"] in body
    assert canary["company"] not in body
    assert "13800138000" not in body
    event = events("pii.revealed").get()
    assert event.actor == alice
    assert event.person_id == inquiry.person_id
    assert event.fields == ["email", "name"]
    assert event.purpose == "respond_inquiry"
    assert event.reason == REASON
    assert event.extra["inquiry"] == inquiry.reference
    # The log names fields, never their values.
    assert canary["name"] not in str(event.extra)
    assert canary["email"] not in str(event.extra)
    assert verify_chain() is None


def test_a_revealed_page_is_never_cached(alice, inquiry):
    staff = staff_client(alice)
    response = reveal(staff, inquiry.reference)
    assert response.status_code == HTTPStatus.OK
    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control
    assert "private" in cache_control
    assert "no-store" in staff.get("/backoffice/")["Cache-Control"]


@pytest.mark.parametrize("reason", ["", "because", "  short   "])
def test_reveal_without_a_real_reason_is_refused(alice, canary, inquiry, reason):
    staff = staff_client(alice)
    response = reveal(staff, inquiry.reference, reason=reason)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert canary["name"] not in response.content.decode()
    assert not events("pii.revealed").exists()


def test_reveal_for_a_purpose_outside_the_role_is_refused(alice, canary, inquiry):
    staff = staff_client(alice)
    response = reveal(staff, inquiry.reference, purpose="security")
    assert response.status_code == HTTPStatus.FORBIDDEN
    body = response.content.decode()
    assert canary["name"] not in body
    assert canary["email"] not in body
    assert not events("pii.revealed").exists()
    assert (
        events("pii.reveal_refused").get().extra["refusal"] == "the role may not reveal this category for this purpose"
    )


def test_reveal_of_no_field_or_an_unknown_field_is_refused(alice, canary, inquiry):
    staff = staff_client(alice)
    assert reveal(staff, inquiry.reference, field_names=[]).status_code == HTTPStatus.BAD_REQUEST
    assert reveal(staff, inquiry.reference, field_names=["name", "password"]).status_code == HTTPStatus.BAD_REQUEST
    assert not events("pii.revealed").exists()


def test_an_unknown_reference_is_404(alice):
    staff = staff_client(alice)
    assert staff.get("/backoffice/inquiries/ZZZZZZZZZZ/").status_code == HTTPStatus.NOT_FOUND
    assert reveal(staff, "ZZZZZZZZZZ").status_code == HTTPStatus.NOT_FOUND


# --- least privilege ------------------------------------------------------------------------


@pytest.mark.duty("SEC-02")
def test_the_auditor_cannot_open_or_reveal_a_request(bob, canary, inquiry):
    staff = staff_client(bob)
    inbox = staff.get("/backoffice/")
    assert inbox.status_code == HTTPStatus.OK
    assert inquiry.reference not in inbox.content.decode()
    assert staff.get(f"/backoffice/inquiries/{inquiry.reference}/").status_code == HTTPStatus.NOT_FOUND
    response = reveal(staff, inquiry.reference)
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert canary["name"] not in response.content.decode()
    assert not events("pii.revealed").exists()


@pytest.mark.duty("SEC-02")
def test_the_auditor_reads_the_audit_log_and_that_read_is_logged(alice, bob, inquiry):
    reveal(staff_client(alice), inquiry.reference)
    auditor = staff_client(bob)
    response = auditor.get("/backoffice/audit/")
    assert response.status_code == HTTPStatus.OK
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    row_start = body.index("<code>pii.revealed</code>")
    row = body[row_start : body.index("</tr>", row_start)]
    assert "alice" in row
    assert "电子邮箱, 姓名" in row  # field names in the staff member's language
    assert "答复客户的咨询请求" in row
    assert "respond_inquiry" in row
    assert REASON in row
    assert inquiry.person.reference in row
    viewed = events("audit.viewed").get()
    assert viewed.actor == bob
    assert verify_chain() is None


@pytest.mark.duty("SEC-02")
def test_the_auditor_narrows_the_log_by_person_staff_event_and_day_and_the_filter_is_logged(
    alice, bob, inquiry, submit
):
    reveal(staff_client(alice), inquiry.reference)
    submit(email="someone.else@example.com")  # another person's request: their own events
    other = Inquiry.objects.exclude(pk=inquiry.pk).select_related("person").get()
    auditor = staff_client(bob)

    def codes(query: str) -> list[str]:
        body = auditor.get(f"/backoffice/audit/?{query}").content.decode()
        return re.findall(r"<code>([a-z_]+\.[a-z_]+)</code>", body)

    assert 'aria-label="筛选日志"' in auditor.get("/backoffice/audit/").content.decode()
    mine = codes(f"person={inquiry.person.reference}")
    assert "pii.revealed" in mine
    assert "inquiry.submitted" in mine
    assert len(mine) == AuditEvent.objects.filter(person=inquiry.person).count()
    assert codes(f"person={other.person.reference.lower()}").count("pii.revealed") == 0
    assert "pii.revealed" in codes(f"staff={alice.pk}")
    assert set(codes(f"staff={alice.pk}")) <= {"pii.revealed", "staff.signed_in", "staff.new_device"}
    assert "pii.revealed" not in codes(f"staff={bob.pk}")
    assert set(codes("event_type=pii.revealed")) == {"pii.revealed"}
    today = timezone.localdate()
    assert "pii.revealed" in codes(f"occurred_from={today}&occurred_to={today}")
    assert codes(f"occurred_to={today - timedelta(days=1)}") == []
    viewed = events("audit.viewed").order_by("-id").first()
    assert viewed.extra["filter"]["before"].startswith(str(today))

    refused = auditor.get("/backoffice/audit/?person=not-a-ref")
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert "个人编号为 10 位字母和数字" in refused.content.decode()
    english = auditor.get("/backoffice/audit/?person=not-a-ref", HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == HTTPStatus.BAD_REQUEST
    assert verify_chain() is None


@pytest.mark.duty("SEC-02")
def test_the_auditor_exports_a_filtered_part_of_the_log_with_a_proof_anyone_can_check(  # noqa: PLR0917
    alice, bob, canary, inquiry, tmp_path, monkeypatch
):
    reveal(staff_client(alice), inquiry.reference)
    seal()
    checkpoint(now=timezone.now() + CHECKPOINT_EVERY)  # the quiet site's checkpoint, 10 minutes on
    auditor = staff_client(bob)
    page = auditor.get(f"/backoffice/audit/?person={inquiry.person.reference}").content.decode()
    assert f'href="/backoffice/audit/export/?person={inquiry.person.reference}"' in page

    response = auditor.get(f"/backoffice/audit/export/?person={inquiry.person.reference}")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    document = json.loads(response.content)
    assert {e["person_id"] for e in document["events"]} == {str(inquiry.person.pk)}
    assert all(e["proven"] for e in document["events"])
    assert not any(value in response.content.decode() for value in canary.values())  # ids and fields, never values
    exported = events("audit.exported").get()
    assert exported.actor == bob
    assert exported.extra == {"filter": {"person": inquiry.person.reference.lower()}, "events": len(document["events"])}

    file = tmp_path / "export.json"
    file.write_text(response.content.decode())
    out = io.StringIO()
    call_command("audit", "check-export", str(file), stdout=out)
    assert f"{len(document['events'])} of {len(document['events'])} event(s) proven" in out.getvalue()

    forged = json.loads(file.read_text())
    forged["events"][0]["reason"] = "nothing happened"
    file.write_text(json.dumps(forged))
    with pytest.raises(CommandError, match="its columns are not the ones hashed"):
        call_command("audit", "check-export", str(file))
    forged = json.loads(response.content)
    forged["proofs"][0]["texts"][0] += " "  # the first event's text changed: its hash no longer links
    file.write_text(json.dumps(forged))
    with pytest.raises(CommandError, match=r"does not follow|do not end"):
        call_command("audit", "check-export", str(file))

    monkeypatch.setattr(access, "MAX_EXPORT", 1)
    refused = auditor.get("/backoffice/audit/export/")
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert events("audit.exported").count() == 1
    assert verify_chain() is None


def test_sales_cannot_read_the_audit_log(alice):
    staff = staff_client(alice)
    assert staff.get("/backoffice/audit/").status_code == HTTPStatus.NOT_FOUND
    assert not events("audit.viewed").exists()


def test_every_backoffice_page_needs_a_signed_in_staff_member(client, inquiry):
    for url in ("/backoffice/", f"/backoffice/inquiries/{inquiry.reference}/", "/backoffice/audit/"):
        response = client.get(url)
        assert redirects_to_login(response), url
        assert parse_qs(urlsplit(response["Location"]).query)["next"] == [url]
    assert redirects_to_login(reveal(client, inquiry.reference))
    assert not events("pii.revealed").exists()


def test_staff_without_a_role_get_nothing(db, tmp_path, inquiry):
    nobody = make_staff("nora", "sales", tmp_path)
    nobody.groups.clear()
    staff = Client()
    assert sign_in(staff, nobody).status_code == HTTPStatus.FOUND
    for url in ("/backoffice/", f"/backoffice/inquiries/{inquiry.reference}/", "/backoffice/audit/"):
        assert redirects_to_login(staff.get(url)), url
    assert redirects_to_login(reveal(staff, inquiry.reference))
    assert not events("pii.revealed").exists()


def test_an_inactive_or_non_staff_account_gets_nothing(db, tmp_path, inquiry):
    user = make_staff("otto", "sales", tmp_path)
    User.objects.filter(pk=user.pk).update(is_staff=False)
    staff = Client()
    sign_in(staff, user)
    assert redirects_to_login(staff.get("/backoffice/"))
    assert redirects_to_login(reveal(staff, inquiry.reference))
    assert not events("pii.revealed").exists()


# --- the processing gate applies to staff too ------------------------------------------------


@pytest.mark.duty("CON-04")
def test_after_withdrawal_staff_cannot_reveal(alice, canary, inquiry):
    assert withdraw_consent(inquiry.person, "respond_inquiry", channel="test") == 1
    staff = staff_client(alice)
    response = reveal(staff, inquiry.reference)
    assert response.status_code == HTTPStatus.FORBIDDEN
    body = response.content.decode()
    assert "个人信息处理规则校验未通过：该目的没有有效的同意" in body  # the gate's reason, in the page's language
    assert canary["name"] not in body
    assert canary["email"] not in body
    assert not events("pii.revealed").exists()
    refused = events("pii.reveal_refused").get()
    assert refused.actor == alice
    assert refused.person_id == inquiry.person_id
    assert refused.fields == ["email", "name"]
    assert "consent" in refused.extra["refusal"]
    assert verify_chain() is None


@pytest.mark.duty("RGT-05")
def test_after_shredding_staff_cannot_reveal(alice, canary, inquiry):
    shred_person(inquiry.person, reason="erasure request")
    staff = staff_client(alice)
    response = reveal(staff, inquiry.reference, field_names=["name", "email", "company"])
    assert response.status_code == HTTPStatus.FORBIDDEN
    body = response.content.decode()
    assert "该个人的信息已被删除" in body
    for value in canary.values():
        assert value not in body
    assert not events("pii.revealed").exists()
    assert "erased" in events("pii.reveal_refused").get().extra["refusal"]


# --- idle timeout --------------------------------------------------------------------------------


def test_staff_sessions_end_after_thirty_idle_minutes(alice):
    assert settings.SESSION_COOKIE_AGE == 1800
    staff = staff_client(alice)
    assert staff.get("/backoffice/").status_code == HTTPStatus.OK
    # Each request pushes the expiry 30 minutes ahead, no further.
    remaining = Session.objects.get().expire_date - timezone.now()
    assert timedelta(minutes=29) < remaining <= timedelta(minutes=30)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert redirects_to_login(staff.get("/backoffice/"))


# --- tamper evidence -----------------------------------------------------------------------------------


@pytest.mark.duty("SEC-02")
def test_rewriting_an_audit_event_is_detected(alice, inquiry):
    staff = staff_client(alice)
    reveal(staff, inquiry.reference)
    staff.post("/backoffice/logout/")  # so that the rewritten event is not the last one
    assert verify_chain() is None
    target = events("pii.revealed").get()
    assert AuditEvent.objects.filter(id__gt=target.id).exists()
    appendonly.remove(connection)  # the attacker can alter the schema (tests/audit/test_appendonly.py)
    AuditEvent.objects.filter(pk=target.pk).update(reason="routine check")
    assert verify_chain() == target


def test_deleting_an_audit_event_is_detected(alice, inquiry):
    staff = staff_client(alice)
    reveal(staff, inquiry.reference)
    staff.post("/backoffice/logout/")
    target = events("pii.revealed").get()
    seal()  # a deletion shows once the events are chained (tests/audit covers pending events)
    target.refresh_from_db()
    follower = events("staff.signed_out").get()
    assert follower.seq == target.seq + 1
    appendonly.remove(connection)
    AuditEvent.objects.filter(pk=target.pk).delete()
    assert verify_chain() == follower


@pytest.mark.duty("SEC-02")
def test_failed_sign_ins_are_audited_without_the_typed_name(alice, client):
    client.post("/backoffice/login/", {"username": "alice", "password": "wrong", "otp_token": "000000"})
    client.post("/backoffice/login/", {"username": "someone@example.com", "password": "x", "otp_token": "1"})
    failed = list(AuditEvent.objects.filter(event_type="staff.sign_in_failed").order_by("id"))
    assert [e.actor for e in failed] == [alice, None]
    assert [e.extra["known_account"] for e in failed] == [True, False]
    assert all("someone@example.com" not in str(e.extra) + e.reason for e in failed)


def test_coded_fields_are_revealed_by_name_in_the_staff_language(alice, inquiry):
    staff = staff_client(alice)
    body = reveal(staff, inquiry.reference, field_names=["industry", "region"]).content.decode()
    industry = next(i for i in load_declaration().industries if i.id == inquiry.industry)
    assert industry.name.zh_hans in body
    assert f"{region_name(inquiry.region, 'zh-hans')} ({inquiry.region})" in body


def test_the_reveal_form_names_purposes_for_staff(alice, inquiry):
    body = staff_client(alice).get(f"/backoffice/inquiries/{inquiry.reference}/").content.decode()
    assert "答复客户的咨询请求" in body
    assert "答复您的咨询请求" not in body


def test_the_audit_page_lists_every_event_with_a_label_in_the_staff_language(bob, client):
    sign_in(client, bob)
    before = AuditEvent.objects.count()
    body = client.get("/backoffice/audit/").content.decode()
    # The viewing is recorded first and listed too; the oldest event is not dropped.
    assert body.count("<tr>") - 1 == before + 1  # minus the header row
    assert "创建员工账号" in body
    assert "查看审计日志" in body
    assert "安全审计员" in body  # the header names the viewer's role


def test_the_audit_page_says_what_an_unchained_entry_is_until_the_sealer_numbers_it(alice, bob, inquiry):
    reveal(staff_client(alice), inquiry.reference)
    auditor = staff_client(bob)
    before = auditor.get("/backoffice/audit/").content.decode()
    assert 'id="audit-pending"' in before
    assert "尚未加入哈希链" in before  # the staff member's language
    seal()
    after = auditor.get("/backoffice/audit/").content.decode()
    # The opening records itself before it lists: after a seal, its own record is the one pending entry.
    assert before.count('title="尚未加入哈希链"') > 1
    assert after.count('title="尚未加入哈希链"') == 1
