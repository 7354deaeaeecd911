"""The risk rules of the public forms (``piwarden.security.risk``) and the security events they and
the forms record (``piwarden.security.actions.record_security_event``), through the real pages."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from django.db import connection
from django.test import Client

from piwarden.audit.models import AuditEvent, EventType
from piwarden.inquiries.models import Inquiry
from piwarden.security.models import EventKind, Refusal, Rule, SecurityEvent
from piwarden.site.forms import HARD_LENGTH
from tests.conftest import consultation_data

pytestmark = pytest.mark.django_db

ADDRESS = "198.51.100.61"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
HASHKEY = re.compile(r'name="captcha_0" value="([0-9a-f]{40})"')


def browser(address: str = ADDRESS) -> Client:
    return Client(REMOTE_ADDR=address, HTTP_USER_AGENT=CHROME, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")


@pytest.mark.duty("SEC-01")
@pytest.mark.duty("RGT-12")
def test_many_submissions_get_a_harder_captcha_then_a_block_with_a_reference(settings):
    settings.PIWARDEN_RISK_HARDER_CAPTCHA = 2
    settings.PIWARDEN_RISK_BLOCK = 4
    client = browser()
    for n in range(2):
        assert client.post("/en/consultation/", consultation_data(email=f"p{n}@example.com")).status_code == 302

    # The third: the usual CAPTCHA is not enough now; the page asks the longer one, and says why.
    asked = client.post("/en/consultation/", consultation_data(email="p2@example.com"))
    assert asked.status_code == HTTPStatus.BAD_REQUEST
    assert "please type the longer verification code now shown" in asked.content.decode()
    hashkey = HASHKEY.search(asked.content.decode())[1]
    from captcha.models import CaptchaStore  # noqa: PLC0415  # the challenge the page stored

    assert len(CaptchaStore.objects.get(hashkey=hashkey).response) == HARD_LENGTH
    assert not AuditEvent.objects.filter(event_type=EventType.CAPTCHA_FAILED).exists()  # not a wrong answer
    answered = client.post(
        "/en/consultation/", consultation_data(email="p2@example.com", captcha_0=hashkey, captcha_1="PASSED")
    )
    assert answered.status_code == 302
    assert Inquiry.objects.count() == 3

    # Past the block: refused for the rest of the day, with a reference, whatever the CAPTCHA.
    refused = client.post("/en/consultation/", consultation_data(email="p4@example.com"))
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Too many forms were sent from your network today" in refused.content.decode()
    [refusal] = Refusal.objects.all()
    assert refusal.rule == Rule.MANY_SUBMISSIONS
    assert refusal.reference in refused.content.decode()
    assert 0 < int(refused["Retry-After"]) <= 86_400
    # The rights form is the same client's too, and cites the same refusal.
    rights = client.post("/en/rights/", {"kind": "access", "email": "p5@example.com"})
    assert rights.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert refusal.reference in rights.content.decode()
    assert Refusal.objects.count() == 1
    [blocked] = AuditEvent.objects.filter(event_type=EventType.CLIENT_BLOCKED)
    assert blocked.extra == {"scope": "consultation", "rule": "many_submissions", "refusal": refusal.reference}
    # Another client is not affected.
    assert browser("203.0.113.61").post("/en/consultation/", consultation_data()).status_code == 302


@pytest.mark.duty("SEC-01")
def test_too_many_wrong_captcha_answers_block_the_client_for_the_day(settings):
    settings.PIWARDEN_RISK_CAPTCHA_FAILURES = "2/h"
    client = browser()
    wrong = consultation_data(captcha_0="no-such-challenge", captcha_1="WRONG")
    assert [client.post("/en/consultation/", wrong).status_code for _ in range(2)] == [400, 400]
    third = client.post("/en/consultation/", wrong)
    assert third.status_code == HTTPStatus.TOO_MANY_REQUESTS
    [refusal] = Refusal.objects.all()
    assert refusal.rule == Rule.CAPTCHA_FAILURES
    assert "The verification code was answered wrongly too many times" in third.content.decode()
    # Blocked now even with a right answer, citing the same refusal.
    right = client.post("/en/consultation/", consultation_data())
    assert right.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert refusal.reference in right.content.decode()
    assert not Inquiry.objects.exists()


@pytest.mark.duty("SEC-01")
def test_a_consultation_records_the_device_and_software_information_encrypted(client):
    client = browser()
    assert client.post("/en/consultation/", consultation_data()).status_code == 302
    [inquiry] = Inquiry.objects.all()
    [event] = SecurityEvent.objects.all()
    assert (event.kind, event.scope, event.person_id, event.about) == (
        EventKind.CONSULTATION,
        "consultation",
        inquiry.person_id,
        inquiry.reference,
    )
    assert (event.address, event.user_agent) == (ADDRESS, CHROME)
    assert re.fullmatch(r"[0-9a-f]{16}", event.device)
    # At rest: neither the address nor the user agent, in any column.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM security_securityevent")
        stored = repr(cursor.fetchall())
    for value in (ADDRESS, "Chrome/131", "Windows"):
        assert value not in stored


@pytest.mark.duty("SEC-01")
def test_a_rights_request_records_its_security_event_tied_to_the_person():
    client = browser()
    data = {"kind": "access", "email": "r@example.com", "acting_as": "self", "captcha_0": "x", "captcha_1": "PASSED"}
    answer = client.post("/en/rights/", data)
    assert answer.status_code == 302, answer.content.decode()[:400]
    [event] = SecurityEvent.objects.all()
    assert (event.kind, event.address) == (EventKind.RIGHTS, ADDRESS)
    assert event.person_id is not None


@pytest.mark.duty("SEC-01")
def test_the_device_signature_links_one_browser_and_network_not_a_person():
    browser().post("/en/consultation/", consultation_data(email="a@example.com"))
    browser("198.51.100.62").post("/en/consultation/", consultation_data(email="b@example.com"))  # same /24
    Client(REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0").post(
        "/en/consultation/", consultation_data(email="c@example.com")
    )
    first, neighbour, firefox = SecurityEvent.objects.order_by("occurred_at", "id")
    assert first.device == neighbour.device  # coarse traits: the same browser on the same network
    assert first.device != firefox.device
