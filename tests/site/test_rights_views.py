"""The rights portal over HTTP (Django's test client), mail read from the locmem outbox."""

from __future__ import annotations

import datetime
import re
from http import HTTPStatus
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from piwarden.audit.models import AuditEvent
from piwarden.rights import clock
from piwarden.rights.models import RequestStatus, RightsRequest, VerificationCode
from piwarden.site.rights_views import STATUS_COOKIE
from tests.rights.bad_input import BAD_REQUESTS
from tests.rights.mailbox import code_in, deliver, last_code_to, messages_to

pytestmark = pytest.mark.django_db

PREFIX = {"zh-hans": "", "en": "/en"}


def form(**overrides: Any) -> dict[str, str]:
    data = {
        "kind": "access",
        "email": "chen.jie@example.com",
        "acting_as": "self",
        "details": "",
        "captcha_0": "test-hashkey",
        "captcha_1": "PASSED",
    }
    data.update(overrides)
    return data


def send(client: Client, language: str = "zh-hans", **overrides: Any) -> RightsRequest:
    response = client.post(f"{PREFIX[language]}/rights/", form(**overrides))
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()
    reference = response["Location"].split("ref=")[1]
    assert response["Location"] == f"{PREFIX[language]}/rights/verify/?ref={reference}"
    return RightsRequest.objects.get(reference=reference)


def confirm(client: Client, request: RightsRequest, code: str, language: str = "zh-hans") -> Any:
    return client.post(f"{PREFIX[language]}/rights/verify/", {"reference": request.reference, "code": code})


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.mark.duty("RGT-08")
@pytest.mark.duty("RGT-09")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_request_is_sent_confirmed_with_the_mailed_code_and_gets_its_due_date(language):
    client = Client()
    page = client.get(f"{PREFIX[language]}/rights/")
    assert page.status_code == HTTPStatus.OK
    assert ("Your rights over your personal information" in text(page)) == (language == "en")
    request = send(client, language)
    assert request.status == RequestStatus.AWAITING_VERIFICATION
    assert client.get(f"{PREFIX[language]}/rights/verify/?ref={request.reference}").status_code == HTTPStatus.OK

    assert mail.outbox == []  # nothing is sent inside the request: a task does it
    deliver()
    [code_mail] = messages_to("chen.jie@example.com")
    assert request.reference in code_mail.subject
    assert ("one-time code" in code_mail.body) == (language == "en")
    assert f"{PREFIX[language]}/rights/verify/" in code_mail.body  # a link built from the named URL
    code = code_in(code_mail.body)
    assert code not in VerificationCode.objects.get(request=request).code_hash
    assert VerificationCode.objects.get(request=request).sealed_code is None  # cleared once sent

    response = confirm(client, request, code, language)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"{PREFIX[language]}/rights/received/"
    received = client.get(response["Location"])
    request.refresh_from_db()
    assert request.status == RequestStatus.RECEIVED
    due = clock.due_date(clock.day_of_receipt(request.submitted_at))
    assert request.due_on == due.date
    assert request.reference in text(received)
    assert f'class="due-date">{due.date.isoformat()}</time>' in text(received)

    deliver()
    receipt = messages_to("chen.jie@example.com")[-1]
    assert request.reference in receipt.subject
    assert due.date.isoformat() in receipt.body
    assert f"{PREFIX[language]}/rights/status/" in receipt.body
    assert ("We received your request" in receipt.subject) == (language == "en")


@pytest.mark.duty("RGT-09")
def test_a_receipt_late_in_the_last_loaded_year_shows_a_provisional_due_date():
    client = Client()
    request = send(client, "en")
    code = last_code_to("chen.jie@example.com")
    submitted = datetime.datetime(2026, 12, 18, 10, 0, tzinfo=datetime.UTC)  # its 15 working days run into 2027
    RightsRequest.objects.filter(pk=request.pk).update(submitted_at=submitted)
    received = client.get(confirm(client, request, code, "en")["Location"])
    due = clock.due_date(datetime.date(2026, 12, 18))
    assert due.provisional
    assert f'class="due-date">{due.date.isoformat()}</time> <span class="provisional">(provisional)</span>' in text(
        received
    )
    deliver()
    assert "This date is provisional" in messages_to("chen.jie@example.com")[-1].body


@pytest.mark.duty("RGT-10")
def test_known_and_unknown_addresses_get_byte_identical_answers():
    send(Client(), email="known@example.com")  # the address is known from now on
    answers = []
    for address in ("known@example.com", "never.seen@example.com"):
        response = Client().post("/rights/", form(email=address))
        reference = response["Location"].split("ref=")[1]
        answers.append(response.serialize().replace(reference.encode(), b"REFERENCE"))
    assert answers[0] == answers[1]


@pytest.mark.duty("RGT-10")
def test_following_answers_the_same_whether_or_not_reference_and_address_belong_together():
    mine = send(Client(), email="owner@example.com")
    confirm(Client(), mine, last_code_to("owner@example.com"))
    deliver()  # the receipt
    mail.outbox.clear()
    answers = []
    for address in ("owner@example.com", "stranger@example.com"):
        response = Client().post("/rights/status/", {"reference": mine.reference, "email": address})
        answers.append(response.serialize())
    assert answers[0] == answers[1]
    unknown = Client().post("/rights/status/", {"reference": "ABCDEFGHJK", "email": "owner@example.com"})
    assert unknown.serialize().replace(b"ABCDEFGHJK", mine.reference.encode()) == answers[0]
    deliver()
    assert messages_to("stranger@example.com") == []
    assert len(messages_to("owner@example.com")) == 1


@pytest.mark.duty("RGT-10")
def test_another_persons_reference_with_your_address_reveals_nothing():
    theirs = send(Client(), email="victim@example.com", kind="deletion")
    confirm(Client(), theirs, last_code_to("victim@example.com"))
    mine = send(Client(), email="prober@example.com")
    confirm(Client(), mine, last_code_to("prober@example.com"))
    deliver()  # the receipts
    mail.outbox.clear()

    prober = Client()
    prober.post("/rights/status/", {"reference": theirs.reference, "email": "prober@example.com"})
    deliver()
    assert mail.outbox == []  # no code to the prober for the victim's request
    for guess in ("000000", "123456", "999999"):
        refused = prober.post("/rights/status/code/", {"reference": theirs.reference, "code": guess})
        assert refused.status_code == HTTPStatus.BAD_REQUEST
        assert STATUS_COOKIE not in refused.cookies
        assert "victim" not in text(refused)
    # The prober's own code opens the prober's own request, never the victim's.
    prober.post("/rights/status/", {"reference": mine.reference, "email": "prober@example.com"})
    code = last_code_to("prober@example.com")
    assert prober.post("/rights/status/code/", {"reference": theirs.reference, "code": code}).status_code == 400
    opened = prober.post("/rights/status/code/", {"reference": mine.reference, "code": code})
    assert opened["Location"] == "/rights/status/view/"
    page = text(prober.get("/rights/status/view/"))
    assert mine.reference in page
    assert theirs.reference not in page
    assert "删除" not in page.split("<main", 1)[1].split("</main>", 1)[0]  # the victim's kind: deletion


@pytest.mark.duty("RGT-10")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_three_wrong_codes_kill_the_code_in_the_persons_language(language):
    client = Client()
    request = send(client, language)
    right = last_code_to("chen.jie@example.com")
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(3):
        response = confirm(client, request, wrong, language)
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert ("That code is not right" in text(response)) == (language == "en")
    dead = confirm(client, request, right, language)
    assert dead.status_code == HTTPStatus.BAD_REQUEST
    assert ("typed wrongly 3 times" in text(dead)) == (language == "en")
    request.refresh_from_db()
    assert request.status == RequestStatus.AWAITING_VERIFICATION
    assert AuditEvent.objects.filter(event_type="rights.code_refused").count() == 4


@pytest.mark.duty("RGT-10")
def test_an_expired_or_replayed_code_opens_nothing():
    client = Client()
    request = send(client, "en")
    code = last_code_to("chen.jie@example.com")
    VerificationCode.objects.filter(request=request).update(expires_at=timezone.now())
    expired = confirm(client, request, code, "en")
    assert expired.status_code == HTTPStatus.BAD_REQUEST
    assert "This code has expired" in text(expired)

    # A new code through "follow": the request still awaits verification, so it verifies it.
    client.post("/en/rights/status/", {"reference": request.reference, "email": "chen.jie@example.com"})
    code = last_code_to("chen.jie@example.com")
    assert client.post("/en/rights/status/code/", {"reference": request.reference, "code": code})["Location"] == (
        "/en/rights/status/view/"
    )
    request.refresh_from_db()
    assert request.status == RequestStatus.RECEIVED
    replayed = Client().post("/en/rights/status/code/", {"reference": request.reference, "code": code})
    assert replayed.status_code == HTTPStatus.BAD_REQUEST
    assert "has been used already" in text(replayed)


@pytest.mark.duty("RGT-09")
def test_the_status_page_lists_the_steps_the_due_date_and_the_working_days_left():
    client = Client()
    request = send(client, "en", kind="correction", details="My company is now Example Ltd.")
    confirm(client, request, last_code_to("chen.jie@example.com"), "en")
    page = text(client.get("/en/rights/status/view/"))
    request.refresh_from_db()
    today = clock.day_of_receipt(timezone.now())
    left = clock.working_days_left(request.due_on, today)
    assert f'<dd class="days-left">{left}</dd>' in page
    assert f'class="due-date">{request.due_on.isoformat()}</time>' in page
    assert "Awaiting verification of your e-mail address" in page
    assert "My company is now Example Ltd." in page
    assert page.count("<li><time") == 2


def test_the_opened_request_is_tied_to_this_browser_and_a_forged_cookie_opens_nothing():
    client = Client()
    request = send(client)
    confirm(client, request, last_code_to("chen.jie@example.com"))
    assert client.get("/rights/status/view/").status_code == HTTPStatus.OK
    assert Client().get("/rights/status/view/")["Location"] == "/rights/status/"  # another browser
    forged = Client()
    forged.cookies[STATUS_COOKIE] = str(request.pk)  # the id without the signature
    assert forged.get("/rights/status/view/")["Location"] == "/rights/status/"


def test_the_opened_request_closes_after_30_minutes(monkeypatch):
    client = Client()
    request = send(client)
    confirm(client, request, last_code_to("chen.jie@example.com"))
    later = datetime.datetime.now(datetime.UTC).timestamp() + 30 * 60 + 1
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    assert client.get("/rights/status/view/")["Location"] == "/rights/status/"


@pytest.mark.parametrize(("overrides", "field"), BAD_REQUESTS)
def test_bad_input_is_refused_with_a_message_and_nothing_is_stored(overrides, field):
    response = Client().post("/en/rights/", form(**overrides))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.context["form"].errors[field]
    assert "Your request was not sent" in text(response)
    assert not RightsRequest.objects.exists()


def test_a_guardian_and_a_relative_say_whom_they_act_for():
    send(Client(), acting_as="guardian_of_child_under_14", details="My son Li Ming, 9")
    send(Client(), kind="deceased_relative", acting_as="close_relative_of_deceased", details="My late mother")
    assert sorted(RightsRequest.objects.values_list("acting_as", flat=True)) == [
        "close_relative_of_deceased",
        "guardian_of_child_under_14",
    ]


def test_codes_mailed_to_one_address_and_posts_from_one_network_are_limited(settings):
    settings.PIWARDEN_RIGHTS_MAIL_RATE = "2/h"
    for _ in range(2):
        send(Client())
    limited = Client().post("/en/rights/", form())
    assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Too many codes were sent to this e-mail address" in text(limited)
    assert RightsRequest.objects.count() == 2
    send(Client(), email="someone.else@example.com")  # another address is not limited
    settings.PIWARDEN_RIGHTS_RATE = "1/m"
    Client().post("/rights/status/", {"reference": "ABCDEFGHJK", "email": "x@example.com"})
    assert Client().post("/rights/status/", {"reference": "ABCDEFGHJK", "email": "x@example.com"}).status_code == 429


def test_the_portal_pages_work_without_javascript_and_load_nothing_from_elsewhere():
    client = Client()
    for path in ("/rights/", "/en/rights/", "/rights/status/", "/rights/verify/?ref=ABCDEFGHJK"):
        response = client.get(path)
        assert response.status_code == HTTPStatus.OK
        body = response.content.decode()
        # The only script is the cookie banner's own static file (it closes the banner without a
        # page load; the banner's form works without it): none of the portal's.
        scripts = re.findall(r"<script[^>]*>", body)
        assert all(re.fullmatch(r'<script src="/static/piwarden/cookies\.[0-9a-f]{12}\.js" defer>', s) for s in scripts)
        assert "<script" not in body.split('id="cookie-banner"', 1)[-1].split("</section>", 1)[1]
        assert "style=" not in body
        assert "http://" not in body.replace("http://testserver", "")
        assert "https://" not in body
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
