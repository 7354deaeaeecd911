"""The staff read path, called as a view calls it and as an API or a command would call it directly.

Every check lives in the access functions, not in the form that hides the choices: these tests
post what the form would never offer and call the functions without any form.  Every refusal
leaves an audit record that outlives the refused request; the inbox pages through every
request; the audit log reads in the staff member's language.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import User
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.utils import timezone
from django.utils.html import escape
from django_otp.middleware import OTPMiddleware

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.backoffice.forms import RevealForm
from piwarden.consent.actions import withdraw_consent
from piwarden.inquiries import access
from piwarden.inquiries.actions import Submission, submit_inquiry
from piwarden.inquiries.models import PERSONAL_FIELDS, REQUEST_FIELDS, Inquiry, InquiryStatus
from piwarden.policy.declaration import load_declaration
from piwarden.staff.permissions import staff_role
from piwarden.vault.crypto import forget_cached_keys
from piwarden.vault.keys import reset_provider
from tests.backoffice.test_staff_console import REASON, canary, events, inquiry, reveal, staff_client
from tests.conftest import consultation_data, make_staff

__all__ = ["canary", "inquiry"]  # fixtures shared with the console's tests

pytestmark = pytest.mark.django_db

REFERENCE = re.compile(r'href="/backoffice/inquiries/([A-Z0-9]{10})/"')


def as_request_sees(client: Client) -> User:
    """The user a request from this signed-in client carries: after the session, auth and
    django-otp middleware, exactly what a view, an API endpoint or a command handed a request
    would pass to the access functions."""
    request = RequestFactory().get("/backoffice/")
    request.COOKIES[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME].value
    seen: dict[str, Any] = {}

    def view(req: HttpRequest) -> HttpResponse:
        assert req.user.is_verified()  # type: ignore[union-attr]  # added by OTPMiddleware
        seen["user"] = req.user
        return HttpResponse()

    SessionMiddleware(AuthenticationMiddleware(OTPMiddleware(view)))(request)
    user: User = seen["user"]
    return user


# --- purpose binding, walked over every role, purpose and category ------------------------------


@pytest.mark.duty("CON-03")
@pytest.mark.duty("SEC-02")
def test_every_role_purpose_and_category_through_the_read_path(tmp_path: Path, canary, inquiry, assign):
    """A reveal succeeds exactly where the role grants the purpose for the category, the category
    declares it and the read path has fields of it; everything else is refused and recorded."""
    declaration = load_declaration()
    outcomes = {"revealed": 0, "refused": 0}
    for number, role in enumerate(declaration.roles):
        user = make_staff(f"walker{number}", role.id, tmp_path)
        if role.reveal:
            assign(inquiry.reference, user)  # sales see only the requests assigned to them
            inquiry.refresh_from_db()
        staff = as_request_sees(staff_client(user))
        for purpose in declaration.purposes:
            for category in declaration.categories:
                # The category's fields on a consultation request; else its first field (or file store)
                # by its full path, which the read path has no way to reveal (the walk still asks).
                fields = [p.rsplit(".", 1)[1] for p in category.fields if p.startswith("inquiries.Inquiry.")]
                fields = fields or (category.fields + category.files)[:1]
                allowed = (
                    role.may_reveal(category.id, purpose.id)
                    and purpose.id in category.purposes
                    and set(fields) <= set(PERSONAL_FIELDS)
                )
                before = AuditEvent.objects.order_by("id").last()
                try:
                    revealed = access.reveal_inquiry_fields(
                        staff, inquiry, fields=fields, purpose=purpose.id, reason=REASON
                    )
                except access.RevealRefused:
                    assert not allowed, (role.id, purpose.id, category.id)
                    outcome = "refused"
                else:
                    assert allowed, (role.id, purpose.id, category.id)
                    assert list(revealed.values) == fields
                    assert all(revealed.values[f] for f in fields)  # decrypted, none missing
                    assert {f: revealed.values[f] for f in canary} == canary
                    outcome = "revealed"
                (event,) = AuditEvent.objects.filter(id__gt=before.id if before else 0)
                assert event.event_type == {"revealed": "pii.revealed", "refused": "pii.reveal_refused"}[outcome]
                assert (event.actor, event.person_id, event.purpose) == (user, inquiry.person_id, purpose.id)
                assert event.reason == REASON
                outcomes[outcome] += 1
    # Both outcomes occurred: the walk cannot pass by refusing (or allowing) everything.
    # Grants this read path can use: on categories with consultation fields (the privacy officer's
    # grant on rights_requests is used by the rights queue's read path, rights.access).
    inquiry_categories = {
        c.id for c in declaration.categories if any(f.startswith("inquiries.Inquiry.") for f in c.fields)
    }
    granted = sum(len(p) for r in declaration.roles for c, p in r.reveal.items() if c in inquiry_categories)
    walked = len(declaration.roles) * len(declaration.purposes) * len(declaration.categories)
    assert outcomes == {"revealed": granted, "refused": walked - granted}
    assert outcomes["revealed"] == 2  # sales and the privacy officer, each to answer the request
    assert verify_chain() is None


def test_the_privacy_officer_cannot_reveal_consultation_data_for_security(carol, canary, inquiry):
    """The reported case: `security` is not a purpose of the consultation category."""
    staff = staff_client(carol)
    response = reveal(staff, inquiry.reference, purpose="security")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert canary["name"] not in response.content.decode()
    assert "security" not in dict(RevealForm(role=staff_role(as_request_sees(staff))).fields["purpose"].choices)
    assert not events("pii.revealed").exists()
    assert events("pii.reveal_refused").get().purpose == "security"


# --- the access function, called directly -----------------------------------------------------


@pytest.mark.duty("SEC-02")
def test_called_directly_the_access_function_refuses_a_purpose_outside_the_role(alice, canary, inquiry):
    staff = as_request_sees(staff_client(alice))
    for purpose in ("security", "consent_evidence", "marketing"):
        with pytest.raises(access.RevealRefused) as refused:
            access.reveal_inquiry_fields(staff, inquiry, fields=["name", "email"], purpose=purpose, reason=REASON)
        assert refused.value.status == HTTPStatus.FORBIDDEN
    assert not events("pii.revealed").exists()
    recorded = events("pii.reveal_refused").order_by("id")
    assert [e.purpose for e in recorded] == ["security", "consent_evidence", "marketing"]
    assert {e.extra["refusal"] for e in recorded} == {"the role may not reveal this category for this purpose"}
    assert all(e.actor == alice and e.fields == ["email", "name"] for e in recorded)
    # The same function allows what the role does grant.
    revealed = access.reveal_inquiry_fields(staff, inquiry, fields=["name"], purpose="respond_inquiry", reason=REASON)
    assert revealed.values == {"name": canary["name"]}


def test_called_directly_with_an_account_that_skipped_the_second_factor_nothing_is_revealed(alice, inquiry):
    unverified = User.objects.get(pk=alice.pk)  # loaded as a command would, never through OTP
    with pytest.raises(access.RevealRefused):
        access.reveal_inquiry_fields(unverified, inquiry, fields=["name"], purpose="respond_inquiry", reason=REASON)
    event = events("pii.reveal_refused").get()
    assert (event.actor, event.extra["refusal"]) == (alice, "no staff role")
    assert not events("pii.revealed").exists()


def test_the_access_functions_cannot_be_wrapped_in_a_callers_transaction(alice, inquiry):
    """Their refusal records commit on their own; a caller's transaction could roll them back."""
    staff = as_request_sees(staff_client(alice))
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        access.reveal_inquiry_fields(staff, inquiry, fields=["name"], purpose="security", reason=REASON)
    assert not events("pii.reveal_refused").exists()


# --- every refusal is audited -------------------------------------------------------------------


REFUSALS = {
    "purpose outside the role": (
        {"purpose": "security"},
        HTTPStatus.FORBIDDEN,
        "the role may not reveal this category for this purpose",
    ),
    "purpose not declared": (
        {"purpose": "marketing"},
        HTTPStatus.FORBIDDEN,
        "the role may not reveal this category for this purpose",
    ),
    "no field": ({"field_names": []}, HTTPStatus.BAD_REQUEST, "no field chosen"),
    "unknown field": ({"field_names": ["name", "password"]}, HTTPStatus.BAD_REQUEST, "unknown field"),
    "reason too short": ({"reason": "because"}, HTTPStatus.BAD_REQUEST, "reason too short"),
    "reason too long": ({"reason": "x" * 201}, HTTPStatus.BAD_REQUEST, "reason too long"),
}


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize("case", REFUSALS)
def test_every_refused_reveal_is_recorded(alice, canary, inquiry, case):
    overrides, status, refusal = REFUSALS[case]
    response = reveal(staff_client(alice), inquiry.reference, **overrides)
    assert response.status_code == status
    body = response.content.decode()
    for value in canary.values():
        assert value not in body
    assert 'role="alert"' in body  # the refusal is explained on the page
    assert not events("pii.revealed").exists()
    event = events("pii.reveal_refused").get()
    assert (event.actor, event.person_id, event.extra["refusal"]) == (alice, inquiry.person_id, refusal)
    assert event.extra["inquiry"] == inquiry.reference
    assert event.reason == str(overrides.get("reason", REASON))[: access.MAX_REASON_LENGTH]
    assert verify_chain() is None


@pytest.mark.duty("CON-04")
def test_a_gate_refusal_is_recorded_with_the_staff_members_stated_reason(alice, canary, inquiry):
    assert withdraw_consent(inquiry.person, "respond_inquiry", channel="test") == 1
    response = reveal(staff_client(alice), inquiry.reference)
    assert response.status_code == HTTPStatus.FORBIDDEN
    event = events("pii.reveal_refused").get()
    assert event.reason == REASON
    assert event.extra["refusal"] == "no active consent for this purpose"
    assert event.extra["category"] == "consultation"


def test_a_refused_opening_of_the_audit_log_is_recorded(alice):
    staff = staff_client(alice)
    assert staff.get("/backoffice/audit/").status_code == HTTPStatus.NOT_FOUND
    assert staff.get("/backoffice/audit/?page=3").status_code == HTTPStatus.NOT_FOUND
    refused = list(events("staff.access_refused").order_by("id"))
    assert [(e.actor, e.extra["page"]) for e in refused] == [(alice, "audit"), (alice, "audit")]
    assert refused[0].extra["refusal"] == "the role may not read the audit log"
    assert not events("audit.viewed").exists()


def test_a_refused_opening_of_a_request_is_recorded(bob, inquiry):
    staff = staff_client(bob)
    assert staff.get(f"/backoffice/inquiries/{inquiry.reference}/").status_code == HTTPStatus.NOT_FOUND
    assert reveal(staff, inquiry.reference).status_code == HTTPStatus.NOT_FOUND
    refused = list(events("staff.access_refused").order_by("id"))
    assert [(e.actor, e.extra["page"]) for e in refused] == [(bob, "inquiry"), (bob, "inquiry")]
    assert not events("pii.revealed").exists()
    with pytest.raises(Http404):
        access.list_inquiries_for_staff(as_request_sees(staff))
    assert events("staff.access_refused").last().extra["page"] == "inbox"


# --- keys missing: the failed reveal leaves a record ---------------------------------------------


@pytest.fixture
def keys_gone(settings: Any, tmp_path: Path) -> Iterator[None]:
    """The key directory is moved away (after sign-in and submission)."""
    settings.PIWARDEN_KEYS = f"file:{tmp_path / 'keys-moved-away'}"
    reset_provider()
    forget_cached_keys()
    yield
    reset_provider()
    forget_cached_keys()


@pytest.mark.duty("SEC-02")
def test_a_reveal_that_fails_for_want_of_keys_is_recorded(alice, canary, inquiry, request):
    staff = staff_client(alice)
    request.getfixturevalue("keys_gone")
    response = reveal(staff, inquiry.reference)
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    for value in canary.values():
        assert value not in response.content.decode()
    assert not events("pii.revealed").exists()
    event = events("pii.reveal_failed").get()
    assert (event.actor, event.person_id, event.purpose) == (alice, inquiry.person_id, "respond_inquiry")
    assert (event.fields, event.reason, event.extra["refusal"]) == (["email", "name"], REASON, "keys unavailable")
    assert verify_chain() is None


# --- the inbox: every request, paged and filtered -------------------------------------------------


def make_requests(count: int, **overrides: str) -> list[Inquiry]:
    """Requests through the write path (one person, as a returning visitor)."""
    made = []
    for _ in range(count):
        data = {**consultation_data(), **overrides}
        inquiry, _created = submit_inquiry(
            Submission(
                values={f: data[f] for f in REQUEST_FIELDS},
                submission_token=uuid.uuid4(),
                language="zh-hans",
                consent_text="同意",
            )
        )
        made.append(inquiry)
    return made


def walk_pages(client: Client, url: str) -> list[str]:
    """Follow the page's own "older" links to the end; the references in the order shown."""
    seen: list[str] = []
    while url:
        response = client.get(url)
        assert response.status_code == HTTPStatus.OK
        body = response.content.decode()
        seen += REFERENCE.findall(body)
        older = re.search(r'<a href="([^"]+)" rel="next">', body)
        url = "/backoffice/" + older.group(1).replace("&amp;", "&") if older else ""
    return seen


def more_requests(like: Inquiry, count: int, product: str) -> list[Inquiry]:
    """Many requests at once (the inbox never decrypts, so only their listing columns matter)."""
    data = consultation_data()
    rows = [
        Inquiry(
            person=like.person,
            data_key_id=like.data_key_id,
            submission_token=uuid.uuid4(),
            product=product,
            language="zh-hans",
            **{f: data[f] for f in PERSONAL_FIELDS},
        )
        for _ in range(count)
    ]
    Inquiry.objects.bulk_create(rows)
    return list(Inquiry.objects.filter(pk__in=[r.pk for r in rows]))


def test_the_inbox_pages_through_every_request(carol):
    (first_one,) = make_requests(1, product="data")
    made = [first_one, *more_requests(first_one, 204, "data"), *more_requests(first_one, 12, "cloud")]
    staff = staff_client(carol)  # the privacy officer sees every request
    first = staff.get("/backoffice/")
    assert len(REFERENCE.findall(first.content.decode())) == access.INBOX_PAGE_SIZE
    assert "第 1 页，共 5 页" in first.content.decode()
    shown = walk_pages(staff, "/backoffice/")
    assert len(shown) == len(made)  # no request twice, none left out (the oldest 17 used to be)
    newest_first = [i.reference for i in sorted(made, key=lambda i: (i.submitted_at, i.id), reverse=True)]
    assert shown == newest_first
    # The pager keeps the filter: every page of "cloud" holds only cloud requests.
    assert walk_pages(staff, "/backoffice/?product=cloud") == newest_first[:12]
    data_only = walk_pages(staff, "/backoffice/?product=data")
    assert data_only == newest_first[12:]


def test_the_inbox_filters_by_status_product_and_day(carol):
    new, answered, old = make_requests(1, product="data") + make_requests(1, product="cloud") + make_requests(1)
    Inquiry.objects.filter(pk=answered.pk).update(status=InquiryStatus.ANSWERED)
    long_ago = timezone.now() - datetime.timedelta(days=10)
    Inquiry.objects.filter(pk=old.pk).update(submitted_at=long_ago)
    today = timezone.localdate()
    staff = staff_client(carol)  # the privacy officer sees every request

    def shown(query: str) -> set[str]:
        response = staff.get(f"/backoffice/?{query}")
        assert response.status_code == HTTPStatus.OK
        return set(REFERENCE.findall(response.content.decode()))

    assert shown("") == {new.reference, answered.reference, old.reference}
    assert shown("status=answered") == {answered.reference}
    assert shown("status=new&product=data") == {new.reference, old.reference}
    assert shown(f"submitted_from={today - datetime.timedelta(days=1)}") == {new.reference, answered.reference}
    assert shown(f"submitted_to={today - datetime.timedelta(days=5)}") == {old.reference}
    assert shown(f"submitted_from={timezone.localdate(long_ago)}&submitted_to={timezone.localdate(long_ago)}") == {
        old.reference
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("submitted_from=2026-13-45", "submitted_from"),
        ("status=lost", "status"),
        ("product=<b>x</b>", "product"),
        ("submitted_from=2026-05-02&submitted_to=2026-05-01", "submitted_to"),
    ],
)
def test_a_bad_inbox_filter_is_explained_and_lists_nothing(alice, inquiry, query, field):
    response = staff_client(alice).get(f"/backoffice/?{query}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    (message,) = response.context["form"].errors[field]
    assert re.search(r"[\u4e00-\u9fff]", message), message  # in the staff member's language
    body = response.content.decode()
    assert f'<p class="field-error">{escape(message)}</p>' in body
    assert inquiry.reference not in body
    assert "<b>x</b>" not in body


def test_an_inverted_date_range_is_explained_in_our_words(alice):
    response = staff_client(alice).get("/backoffice/?submitted_from=2026-05-02&submitted_to=2026-05-01")
    assert "结束日期早于开始日期。" in response.content.decode()


# --- the audit log: names in the staff member's language ------------------------------------------


@pytest.mark.duty("SEC-02")
def test_the_audit_log_names_purposes_fields_actors_and_refusals(alice, carol, inquiry):
    User.objects.filter(pk=alice.pk).update(first_name="丽", last_name="艾")
    staff = staff_client(alice)
    reveal(staff, inquiry.reference)
    reveal(staff, inquiry.reference, purpose="security")
    body = staff_client(carol).get("/backoffice/audit/").content.decode()
    revealed = body[body.index("<code>pii.revealed</code>") :]
    revealed = revealed[: revealed.index("</tr>")]
    assert "丽 艾" in revealed  # the actor by name
    assert "答复客户的咨询请求" in revealed
    assert "电子邮箱, 姓名" in revealed
    refused = body[body.index("<code>pii.reveal_refused</code>") :]
    refused = refused[: refused.index("</tr>")]
    assert "安全事件调查" in refused  # the purpose asked for, by its staff name
    assert "该角色不得为此目的查看该类信息" in refused  # why it was refused, in Chinese


def test_the_audit_log_speaks_english_to_an_english_speaking_auditor(alice, carol, inquiry):
    staff = staff_client(alice)
    reveal(staff, inquiry.reference)
    reveal(staff, inquiry.reference, purpose="security")
    body = staff_client(carol).get("/backoffice/audit/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    revealed = body[body.index("<code>pii.revealed</code>") :]
    revealed = revealed[: revealed.index("</tr>")]
    assert "Answering the customer&#x27;s consultation request" in revealed
    assert "E-mail, Name" in revealed
    refused = body[body.index("<code>pii.reveal_refused</code>") :]
    refused = refused[: refused.index("</tr>")]
    assert "Investigating a security event" in refused
    assert "答复" not in body  # nothing of the Chinese labels
    assert "姓名" not in body


def test_a_staff_members_reason_is_shown_as_written_never_translated(alice, carol, inquiry):
    # The words happen to be a message the system translates; typed by staff, they stay as typed.
    typed = "the person's data has been erased"
    reveal(staff_client(alice), inquiry.reference, reason=typed)
    body = staff_client(carol).get("/backoffice/audit/").content.decode()
    revealed = body[body.index("<code>pii.revealed</code>") :]
    revealed = revealed[: revealed.index("</tr>")]
    assert "the person&#x27;s data has been erased" in revealed
    assert "该个人的信息已被删除" not in revealed


# --- the reveal reason -------------------------------------------------------------------------------


def test_the_reveal_reason_is_capped_declared_and_staff_are_told_to_keep_personal_data_out(alice, inquiry):
    body = staff_client(alice).get(f"/backoffice/inquiries/{inquiry.reference}/").content.decode()
    assert "请勿在此填写姓名、电话号码、电子邮箱等任何个人信息" in body
    assert f'maxlength="{access.MAX_REASON_LENGTH}"' in body
    category = load_declaration().category_of_field("audit.AuditEvent.reason")
    assert category is not None
    assert category.id == "access_reasons"
    assert category.retention_days == 1095
    assert AuditEvent._meta.get_field("reason").max_length == 500
    assert access.MAX_REASON_LENGTH <= 500
