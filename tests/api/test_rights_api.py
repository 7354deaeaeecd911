"""The rights API over HTTP (Django's test client), mail read from the locmem outbox."""

from __future__ import annotations

import datetime
import io
import json
import re
import zipfile
from http import HTTPStatus
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from piwarden.api import tokens
from piwarden.audit.log import EventType
from piwarden.audit.models import AuditEvent
from piwarden.rights import clock
from piwarden.rights.models import Archive, RequestKind, RequestStatus, RightsRequest, VerificationCode
from piwarden.security.models import EventKind, Refusal, Rule, SecurityEvent
from tests.conftest import consultation_data
from tests.rights.bad_input import BAD_REQUESTS
from tests.rights.mailbox import code_in, deliver, last_code_to, messages_to
from tests.rights.staffing import act, console, verified_request

pytestmark = pytest.mark.django_db

ADDRESS = "chen.jie@example.com"
REQUESTS = "/api/rights/requests"
HEADERS = {  # the site's security headers, which JSON answers carry too
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Permissions-Policy",
    "Cross-Origin-Opener-Policy",
}


def post(path: str, body: Any, language: str = "zh-hans", client: Client | None = None) -> Any:
    data = body if isinstance(body, str) else json.dumps(body)
    return (client or Client()).post(path, data, content_type="application/json", headers={"accept-language": language})


def get(path: str, token: str | None, language: str = "zh-hans") -> Any:
    headers = {"accept-language": language}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return Client().get(path, headers=headers)


def ask(accept: str = "zh-hans", **overrides: Any) -> RightsRequest:
    response = post(REQUESTS, {"kind": "access", "email": ADDRESS, **overrides}, accept)
    assert response.status_code == HTTPStatus.ACCEPTED, response.content.decode()
    return RightsRequest.objects.get(reference=response.json()["reference"])


def verified(accept: str = "zh-hans", **overrides: Any) -> tuple[RightsRequest, str]:
    request = ask(accept, **overrides)
    answer = post(f"{REQUESTS}/{request.reference}/verify", {"code": last_code_to(overrides.get("email", ADDRESS))})
    assert answer.status_code == HTTPStatus.OK, answer.content.decode()
    return request, answer.json()["token"]


def plain(response: Any) -> None:
    """No cookie, nothing cached, and the site's security headers."""
    assert response.cookies == {}
    assert "Set-Cookie" not in response
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert set(response.headers) >= HEADERS


@pytest.mark.duty("RGT-08")
@pytest.mark.duty("RGT-09")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_request_is_asked_verified_with_the_mailed_code_and_read_with_its_token(language):
    asked = post(REQUESTS, {"kind": "correction", "email": ADDRESS, "details": "My company is Example Ltd."}, language)
    assert asked.status_code == HTTPStatus.ACCEPTED
    plain(asked)
    assert asked["Content-Language"] == language
    assert ("We have sent a 6-digit code" in asked.json()["message"]) == (language == "en")
    reference = asked.json()["reference"]
    request = RightsRequest.objects.get(reference=reference)
    assert request.status == RequestStatus.AWAITING_VERIFICATION
    assert request.language == language  # by default Accept-Language's: the e-mails follow it
    assert mail.outbox == []  # a task sends it
    deliver()
    [code_mail] = messages_to(ADDRESS)
    assert ("one-time code" in code_mail.body) == (language == "en")

    opened = post(f"{REQUESTS}/{reference.lower()}/verify", {"code": code_in(code_mail.body)}, language)
    assert opened.status_code == HTTPStatus.OK
    plain(opened)
    body = opened.json()
    due = clock.due_date(clock.day_of_receipt(request.submitted_at))
    assert body | {"token": "…"} == {
        "reference": reference,
        "status": "received",
        "received_on": clock.day_of_receipt(request.submitted_at).isoformat(),
        "due_on": due.date.isoformat(),
        "provisional": due.provisional,
        "token": "…",
        "token_type": "Bearer",
        "expires_in": 30 * 60,
    }
    request.refresh_from_db()
    assert request.status == RequestStatus.RECEIVED
    assert body["received_on"] == request.received_on.isoformat()

    shown = get(f"{REQUESTS}/{reference}", body["token"], language)
    assert shown.status_code == HTTPStatus.OK
    plain(shown)
    status = shown.json()
    today = clock.day_of_receipt(timezone.now())
    assert status["working_days_left"] == clock.working_days_left(request.due_on, today)
    assert status["due_on"] == request.due_on.isoformat()
    assert status["details"] == "My company is Example Ltd."
    assert [s["status"] for s in status["steps"]] == ["awaiting_verification", "received"]
    assert (status["status_label"] == "Received") == (language == "en")
    assert status["complaint_routes"] == ""
    assert status["overdue"] is False


def test_the_language_given_with_the_request_is_the_one_its_mails_use():
    request = ask("en", language="zh-hans")
    assert request.language == "zh-hans"
    deliver()
    assert "one-time code" not in messages_to(ADDRESS)[-1].body
    refused = post(REQUESTS, {"kind": "access", "email": ADDRESS, "language": "fr"}, "en")
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert list(refused.json()["fields"]) == ["language"]


@pytest.mark.duty("RGT-10")
def test_known_and_unknown_addresses_get_byte_identical_answers():
    ask(email="known@example.com")
    answers = []
    for address in ("known@example.com", "never.seen@example.com"):
        response = post(REQUESTS, {"kind": "access", "email": address})
        reference = response.json()["reference"]
        answers.append(response.serialize().replace(reference.encode(), b"REFERENCE"))
    assert answers[0] == answers[1]


@pytest.mark.duty("RGT-10")
def test_a_follow_code_is_answered_the_same_whether_or_not_reference_and_address_belong_together():
    mine, _token = verified(email="owner@example.com")
    deliver()
    mail.outbox.clear()
    answers = [
        post(f"{REQUESTS}/{mine.reference}/follow-code", {"email": address}).serialize()
        for address in ("owner@example.com", "stranger@example.com")
    ]
    assert answers[0] == answers[1]
    unknown = post(f"{REQUESTS}/ABCDEFGHJK/follow-code", {"email": "owner@example.com"})
    assert unknown.serialize() == answers[0]
    deliver()
    assert messages_to("stranger@example.com") == []
    [follow_mail] = messages_to("owner@example.com")

    opened = post(f"{REQUESTS}/{mine.reference}/open", {"code": code_in(follow_mail.body)}, "en")
    assert opened.status_code == HTTPStatus.OK
    assert opened.json()["status"] == "received"
    assert get(f"{REQUESTS}/{mine.reference}", opened.json()["token"]).json()["reference"] == mine.reference


@pytest.mark.duty("RGT-10")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_wrong_expired_and_replayed_codes_open_nothing(language):
    request = ask(language)
    code = last_code_to(ADDRESS)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    verify = f"{REQUESTS}/{request.reference}/verify"

    answer = post(verify, {"code": wrong}, language)
    assert answer.status_code == HTTPStatus.BAD_REQUEST
    assert answer.json()["error"] == "code_wrong"
    assert ("That code is not right" in answer.json()["message"]) == (language == "en")
    assert "token" not in answer.json()

    VerificationCode.objects.filter(request=request).update(expires_at=timezone.now())
    assert post(verify, {"code": code}, language).json()["error"] == "code_expired"
    request.refresh_from_db()
    assert request.status == RequestStatus.AWAITING_VERIFICATION

    # A new code through follow-code (the request still awaits verification: it verifies it).
    post(f"{REQUESTS}/{request.reference}/follow-code", {"email": ADDRESS}, language)
    code = last_code_to(ADDRESS)
    assert post(f"{REQUESTS}/{request.reference}/open", {"code": code}, language).status_code == HTTPStatus.OK
    replayed = post(f"{REQUESTS}/{request.reference}/open", {"code": code}, language)
    assert replayed.status_code == HTTPStatus.BAD_REQUEST
    assert replayed.json()["error"] == "code_used"

    # A code for a reference that does not exist: the same as a wrong one.
    assert post(f"{REQUESTS}/ABCDEFGHJK/verify", {"code": code}, language).json()["error"] == "code_wrong"


def test_three_wrong_tries_kill_the_code():
    request = ask("en")
    code = last_code_to(ADDRESS)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        post(f"{REQUESTS}/{request.reference}/verify", {"code": wrong}, "en")
    exhausted = post(f"{REQUESTS}/{request.reference}/verify", {"code": code}, "en")
    assert exhausted.json()["error"] == "code_exhausted"
    assert "typed wrongly 3 times" in exhausted.json()["message"]


@pytest.mark.duty("RGT-10")
def test_a_token_opens_its_own_request_only_and_every_other_answer_is_the_same_404():
    mine, my_token = verified(email="a@example.com")
    theirs, their_token = verified(email="b@example.com")
    assert get(f"{REQUESTS}/{mine.reference}", my_token).status_code == HTTPStatus.OK

    others = [
        get(f"{REQUESTS}/{theirs.reference}", my_token),  # another person's request
        get(f"{REQUESTS}/ABCDEFGHJK", my_token),  # a reference that does not exist
        get(f"{REQUESTS}/{mine.reference}", my_token[:-2] + "xx"),  # forged signature
        get(f"{REQUESTS}/{mine.reference}", str(mine.pk)),  # the id without a signature
        get(f"{REQUESTS}/{theirs.reference}", tokens.issue(mine)[:-1]),
    ]
    assert {r.status_code for r in others} == {HTTPStatus.NOT_FOUND}
    assert len({r.serialize() for r in others}) == 1
    assert others[0].json()["error"] == "not_found"
    for r in others:
        plain(r)
    assert get(f"{REQUESTS}/{theirs.reference}", their_token).status_code == HTTPStatus.OK

    missing = get(f"{REQUESTS}/{mine.reference}", None, "en")
    assert missing.status_code == HTTPStatus.UNAUTHORIZED
    assert missing.json()["error"] == "unauthorized"
    assert "Authorization: Bearer" in missing.json()["message"]
    assert Client().get(f"{REQUESTS}/{mine.reference}", headers={"authorization": f"Basic {my_token}"}).status_code == (
        HTTPStatus.UNAUTHORIZED
    )
    # A cookie opens nothing: the API reads no session and no cookie.
    with_cookie = Client()
    with_cookie.cookies["piwarden_rights"] = my_token
    assert with_cookie.get(f"{REQUESTS}/{mine.reference}").status_code == HTTPStatus.UNAUTHORIZED


def test_a_token_expires_after_30_minutes(monkeypatch):
    request, token = verified()
    assert get(f"{REQUESTS}/{request.reference}", token).status_code == HTTPStatus.OK
    later = datetime.datetime.now(datetime.UTC).timestamp() + 30 * 60 + 1
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    expired = get(f"{REQUESTS}/{request.reference}", token, "en")
    assert expired.status_code == HTTPStatus.NOT_FOUND
    assert "30 minutes" in expired.json()["message"]


def test_a_refused_request_names_the_routes_of_complaint():
    request, token = verified("en")
    RightsRequest.objects.filter(pk=request.pk).update(status=RequestStatus.REFUSED)
    status = get(f"{REQUESTS}/{request.reference}", token, "en").json()
    assert status["status"] == "refused"
    assert "people's court (PIPL 50)" in status["complaint_routes"]
    assert status["working_days_left"] is None


@pytest.mark.parametrize(("overrides", "field"), [*BAD_REQUESTS, ({"details": "x" * 5000}, "details")])
def test_bad_input_is_refused_as_the_form_refuses_it_and_nothing_is_stored(overrides, field):
    body = {"kind": "access", "email": ADDRESS, "acting_as": "self", "details": "", **overrides}
    answers = {language: post(REQUESTS, body, language) for language in ("zh-hans", "en")}
    for language, answer in answers.items():
        assert answer.status_code == HTTPStatus.BAD_REQUEST
        assert answer.json()["error"] == "invalid"
        assert list(answer.json()["fields"]) == [field]
        assert answer["Content-Language"] == language
    assert answers["zh-hans"].json()["fields"] != answers["en"].json()["fields"]
    assert not RightsRequest.objects.exists()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (REQUESTS, "{not json"),
        (REQUESTS, {"email": ADDRESS}),  # no kind
        (REQUESTS, {"kind": ["access"], "email": ADDRESS}),
        (f"{REQUESTS}/ABCDEFGHJK/verify", {}),
        (f"{REQUESTS}/ABCDEFGHJK/verify", {"code": 123456}),
        (f"{REQUESTS}/ABC%21/verify", {"code": "123456"}),  # not a reference's letters
    ],
)
def test_a_body_that_is_not_the_schemas_is_refused_in_the_language_asked(path, body):
    for language in ("zh-hans", "en"):
        answer = post(path, body, language)
        assert answer.status_code == HTTPStatus.BAD_REQUEST
        assert answer.json()["error"] == "malformed"
        assert ("/api/openapi.json" in answer.json()["message"]) is True
        assert ("The request is not the JSON" in answer.json()["message"]) == (language == "en")
        plain(answer)


def test_codes_are_checked_as_the_form_checks_them():
    answer = post(f"{REQUESTS}/ABCDEFGHJK/verify", {"code": "12 34"}, "en")
    assert answer.json()["fields"] == {"code": ["The code has 6 digits, as in the e-mail we sent."]}
    answer = post(f"{REQUESTS}/ABC/follow-code", {"email": ADDRESS}, "en")
    assert list(answer.json()["fields"]) == ["reference"]


def test_no_csrf_token_is_needed_and_no_cookie_is_set():
    client = Client(enforce_csrf_checks=True)
    asked = post(REQUESTS, {"kind": "access", "email": ADDRESS}, client=client)
    assert asked.status_code == HTTPStatus.ACCEPTED
    plain(asked)
    assert client.cookies == {}


def test_rate_limits_answer_429_with_retry_after(settings):
    settings.PIWARDEN_API_RATE = "2/h"  # the API's own, per network address
    assert post(REQUESTS, {"kind": "access", "email": ADDRESS}).status_code == HTTPStatus.ACCEPTED
    assert post(f"{REQUESTS}/ABCDEFGHJK/verify", {"code": "123456"}).status_code == HTTPStatus.BAD_REQUEST
    limited = post(f"{REQUESTS}/ABCDEFGHJK/follow-code", {"email": ADDRESS}, "en")
    assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert limited.json()["error"] == "rate_limited"
    assert 0 < int(limited["Retry-After"]) <= 3600
    plain(limited)
    assert RightsRequest.objects.count() == 1


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize(("language", "review"), [("zh-hans", "/security/review/"), ("en", "/en/security/review/")])
def test_a_rate_limit_refusal_carries_its_reference_in_the_language_asked(settings, language, review):
    settings.PIWARDEN_API_RATE = "1/h"
    assert post(REQUESTS, {"kind": "access", "email": ADDRESS}).status_code == HTTPStatus.ACCEPTED
    limited = post(REQUESTS, {"kind": "access", "email": ADDRESS}, language)
    assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
    body = limited.json()
    [refusal] = Refusal.objects.all()
    assert (body["error"], body["reference"], refusal.rule, refusal.scope) == (
        "rate_limited",
        refusal.reference,
        Rule.RATE_LIMIT,
        "api",
    )
    assert refusal.reference in body["message"]
    assert review in body["message"]
    assert ("Please try again" in body["message"]) == (language == "en")
    assert limited["Content-Language"] == language
    plain(limited)


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_risk_rules_count_api_requests_with_the_pages_and_block_both(settings, language):
    settings.PIWARDEN_RISK_BLOCK = 2
    ask()  # one from the API
    page = {"kind": "access", "email": ADDRESS, "acting_as": "self", "captcha_0": "x", "captcha_1": "PASSED"}
    assert Client().post("/rights/", page).status_code == HTTPStatus.FOUND  # one from the page
    refused = post(REQUESTS, {"kind": "access", "email": ADDRESS}, language)
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    body = refused.json()
    [refusal] = Refusal.objects.all()
    assert (body["error"], body["reference"], refusal.rule, refusal.scope) == (
        "refused",
        refusal.reference,
        Rule.MANY_SUBMISSIONS,
        "rights",
    )
    assert 0 < int(refused["Retry-After"]) <= 86_400
    assert refusal.reference in body["message"]
    assert ("Please try again" in body["message"]) == (language == "en")
    assert RightsRequest.objects.count() == 2
    # The refusal has its security event; the page is refused with the same reference.
    assert refusal.event.kind == EventKind.REFUSED
    again = Client().post("/rights/", page)
    assert again.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert refusal.reference in again.content.decode()


@pytest.mark.duty("SEC-01")
def test_a_request_asked_through_the_api_records_its_security_event_tied_to_the_person():
    client = Client(REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="example-client/1.0")
    request = ask_with(client)
    [event] = SecurityEvent.objects.all()
    assert (event.kind, event.scope, event.person_id, event.about) == (
        EventKind.RIGHTS,
        "rights",
        request.person_id,
        request.reference,
    )
    assert (event.address, event.user_agent) == ("198.51.100.7", "example-client/1.0")


def ask_with(client: Client) -> RightsRequest:
    response = post(REQUESTS, {"kind": "access", "email": ADDRESS}, client=client)
    assert response.status_code == HTTPStatus.ACCEPTED, response.content.decode()
    return RightsRequest.objects.get(reference=response.json()["reference"])


def test_the_portals_limits_count_the_api_too(settings):
    settings.PIWARDEN_RIGHTS_RATE = "1/m"
    page = Client().post("/rights/status/", {"reference": "ABCDEFGHJK", "email": ADDRESS})
    assert page.status_code == HTTPStatus.FOUND
    limited = post(f"{REQUESTS}/ABCDEFGHJK/follow-code", {"email": ADDRESS})
    assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 0 < int(limited["Retry-After"]) <= 60


def test_codes_mailed_to_one_address_are_limited_whichever_interface_asks(settings):
    settings.PIWARDEN_RIGHTS_MAIL_RATE = "2/h"
    ask()
    ask()
    limited = post(REQUESTS, {"kind": "access", "email": ADDRESS}, "en")
    assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert limited.json()["error"] == "too_many_codes"
    assert 0 < int(limited["Retry-After"]) <= 3600
    assert RightsRequest.objects.count() == 2


def test_the_schema_is_served_and_no_docs_page_loads_anything_from_elsewhere():
    schema = Client().get("/api/openapi.json")
    assert schema.status_code == HTTPStatus.OK
    assert schema.cookies == {}
    assert set(schema.headers) >= HEADERS
    paths = schema.json()["paths"]
    assert set(paths) == {
        "/api/rights/requests",
        "/api/rights/requests/{reference}",
        "/api/rights/requests/{reference}/verify",
        "/api/rights/requests/{reference}/follow-code",
        "/api/rights/requests/{reference}/open",
        "/api/rights/requests/{reference}/archive",
    }
    assert "no CAPTCHA" in schema.json()["info"]["description"]
    assert schema.json()["components"]["securitySchemes"]["Token"] == {"type": "http", "scheme": "bearer"}
    assert Client().get("/api/docs").status_code == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_path_under_api_that_is_no_operation_answers_a_json_404_in_the_language_asked(method):
    for language in ("zh-hans", "en"):
        answer = getattr(Client(enforce_csrf_checks=True), method)(
            "/api/rights/nothing", headers={"accept-language": language}
        )
        assert answer.status_code == HTTPStatus.NOT_FOUND
        assert answer.json()["error"] == "no_such_operation"
        assert ("There is no such operation" in answer.json()["message"]) == (language == "en")
        assert answer["Content-Language"] == language
        plain(answer)


@pytest.mark.duty("RGT-02")
def test_a_completed_copy_request_gives_its_archive_to_the_token_while_it_is_ready(carol, submit, settings, tmp_path):
    """The status tells the archive's state; while ready, the same token downloads the zip (recorded);
    another request's token, and the archive once expired, answer 404."""
    settings.PIWARDEN_EXPORTS_DIR = tmp_path / "exports"
    assert submit().status_code == HTTPStatus.FOUND  # the consultation fixture's request: data to export
    email = "zhang.wei@example.com"
    request = verified_request(email, kind=RequestKind.COPY)
    token = tokens.issue(request)
    _other, other_token = verified(email="someone.else@example.com")
    done = act(console(carol), request.reference, "complete", result="Your copy is ready.")
    assert done.status_code == HTTPStatus.FOUND, re.sub(r"\s+", " ", done.content.decode())[-3000:]
    path = f"{REQUESTS}/{request.reference}"

    building = get(path, token).json()["archive"]
    assert (building["state"], building["download"]) == ("building", None)
    assert get(f"{path}/archive", token).status_code == HTTPStatus.NOT_FOUND

    deliver()  # the archive's build, as the worker runs it
    ready = get(path, token).json()["archive"]
    assert ready["state"] == "ready"
    assert ready["download"] == f"{path}/archive"
    assert ready["lifetime_days"] == 5
    before = AuditEvent.objects.filter(event_type=EventType.ARCHIVE_DOWNLOADED).count()
    answer = get(ready["download"], token)
    assert answer.status_code == HTTPStatus.OK
    assert answer["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(answer.streaming_content))) as archive:
        assert any(name.endswith(".json") for name in archive.namelist())
        assert any(consultation_data()["name"] in archive.read(name).decode() for name in archive.namelist())
    assert AuditEvent.objects.filter(event_type=EventType.ARCHIVE_DOWNLOADED).count() == before + 1
    assert get(f"{path}/archive", other_token).status_code == HTTPStatus.NOT_FOUND  # not the token's request
    assert get(f"{path}/archive", None).status_code == HTTPStatus.UNAUTHORIZED

    Archive.objects.filter(reference=request.reference).update(
        expires_at=timezone.now() - datetime.timedelta(minutes=1)
    )
    expired = get(path, token).json()["archive"]
    assert (expired["state"], expired["download"]) == ("expired", None)
    assert get(f"{path}/archive", token).status_code == HTTPStatus.NOT_FOUND


def test_requests_of_other_kinds_have_no_archive():
    request, token = verified()
    assert request.kind == "access"
    assert get(f"{REQUESTS}/{request.reference}", token).json()["archive"] is None  # not completed yet
