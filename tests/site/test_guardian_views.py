"""The guardian's page through HTTP, in both languages (policy §八; law CHD-01, CHD-02).

What the page must say before the guardian decides (purpose, scope, storage, period, protection,
the consequences of a refusal, complaints, correction and deletion, the person responsible), its
two answers, and bad input: each refused with a message in the page's language, nothing recorded.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client

from piwarden.audit.models import AuditEvent, EventType
from piwarden.children.access import link_token
from piwarden.children.actions import request_guardian_consent
from piwarden.children.models import ChildMark, GuardianRequest, GuardianRequestStatus
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.people.actions import find_or_create_person
from piwarden.people.models import Person
from piwarden.vault.blind import email_index

pytestmark = pytest.mark.django_db

PREFIX = {"zh-hans": "", "en": "/en"}
SAYS = {
    "zh-hans": [
        "答复您的咨询请求",
        "咨询请求信息",
        "保存 730 天",
        "仅存储于",
        "加密",
        "如果您拒绝",
        "我同意",
        "我拒绝",
        "儿童个人信息保护负责人",
        "投诉",
        "更正",
    ],
    "en": [
        "Answering your consultation request",
        "Consultation request details",
        "Kept 730 days",
        "Stored in",
        "Encrypted",
        "If you refuse",
        "I consent",
        "I refuse",
        "responsible for children",
        "complain",
        "correct",
    ],
}
ERRORS = {
    "zh-hans": {"tick": "请勾选表示单独同意的方框", "choose": "请选择同意或拒绝", "one": "请只作出一个选择"},
    "en": {
        "tick": "tick the box that gives your separate consent",
        "choose": "Choose whether you consent or refuse",
        "one": "Please give only one answer",
    },
}


def created(sealed: dict[str, str]) -> Person:
    """The guardian's consent's hook: the child's data made from the sealed sign-up."""
    return find_or_create_person(email=sealed["email"])


def open_link(language: str) -> tuple[str, str]:
    child = f"child.page.{language}@example.com"
    asked = request_guardian_consent({"email": child}, "guardian.page@example.com", language, on_consent=created)
    return child, link_token(asked)


def person_of(address: str) -> Person:
    return Person.objects.get(email_index=email_index(address))


def url(language: str, token: str) -> str:
    return f"{PREFIX[language]}/guardian/{token}/"


@pytest.mark.duty("CHD-02")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_page_explains_before_the_guardian_decides(client: Client, language: str) -> None:
    _child, token = open_link(language)
    response = client.get(url(language, token))
    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    for words in SAYS[language]:
        assert words in body, words
    assert "guardian.page@example.com" not in body  # the page shows no personal data
    assert 'name="separate_consent"' in body
    assert "checked" not in body.split('name="separate_consent"')[1][:80]


@pytest.mark.duty("CHD-01")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "choose"),
        ({"decision": "maybe"}, "choose"),
        ({"decision": "consent"}, "tick"),
        ({"decision": "consent", "separate_consent": ""}, "tick"),
        ({"decision": ["consent", "refuse"], "separate_consent": "on"}, "one"),
    ],
    ids=["nothing", "unknown-decision", "consent-unticked", "consent-empty-tick", "two-decisions"],
)
def test_bad_input_is_refused_with_a_message_and_records_nothing(
    client: Client, language: str, data: dict[str, object], error: str
) -> None:
    _child, token = open_link(language)
    response = client.post(url(language, token), data)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert ERRORS[language][error] in response.content.decode()
    assert not ConsentRecord.objects.exists()
    assert not Person.objects.exists()  # nothing of the child before the guardian consents
    assert GuardianRequest.objects.get().status == GuardianRequestStatus.PENDING


@pytest.mark.duty("CHD-01")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_consent_is_recorded_once_and_the_link_then_opens_nothing(client: Client, language: str) -> None:
    address, token = open_link(language)
    response = client.post(url(language, token), {"decision": "consent", "separate_consent": "on"})
    assert response.status_code == HTTPStatus.OK
    child = person_of(address)
    [consent] = ConsentRecord.objects.filter(person=child)
    assert consent.kind == ConsentKind.SEPARATE
    assert ("separately consent" if language == "en" else "单独同意") in consent.shown_text
    assert ChildMark.objects.get(person=child).guardian_consented_at is not None
    again = client.post(url(language, token), {"decision": "refuse"})
    assert again.status_code == HTTPStatus.NOT_FOUND
    assert ("no longer works" if language == "en" else "已失效") in again.content.decode()
    assert ConsentRecord.objects.filter(person=child).count() == 1


@pytest.mark.duty("CHD-02")
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_refusal_needs_no_tick_and_is_recorded(client: Client, language: str) -> None:
    _address, token = open_link(language)
    response = client.post(url(language, token), {"decision": "refuse"})
    assert response.status_code == HTTPStatus.OK
    assert not GuardianRequest.objects.exists()  # destroyed with its key: nothing of the child was kept
    assert not Person.objects.exists()
    assert not ChildMark.objects.exists()
    assert not ConsentRecord.objects.exists()
    event = AuditEvent.objects.get(event_type=EventType.GUARDIAN_DECLINED)
    assert event.person_id is None


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_link_never_issued_opens_nothing(client: Client, language: str) -> None:
    for token in ("nosuchlink", "ImFiYyI:forged"):
        response = client.get(url(language, token))
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert ("no longer works" if language == "en" else "已失效") in response.content.decode()
