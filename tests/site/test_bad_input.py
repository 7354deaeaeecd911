"""Bad input on the consultation form: refused at the boundary, echoed safely, nothing stored.

Every case posts a whole, otherwise valid form (``consultation_data``) with one
thing wrong, in both languages, and checks four properties through the real
HTTP interface:

* the answer is 400 (or the documented status: 405, 429, a redirect for a replay);
* the error is shown next to the field it is about, and only there, in the
  page's language;
* the bad value is never echoed unescaped (no markup from the request reaches
  the page as markup);
* nothing was written: no person, data key, consent, request, audit event or
  queued task.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http import HTTPStatus
from typing import Any

import pytest
from captcha.models import CaptchaStore
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext
from django_tasks_db.models import DBTaskResult

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent, EventType
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.ratelimit.limiter import window_of
from piwarden.ratelimit.models import RateCounter
from piwarden.security.device import period_keys
from piwarden.security.models import SecurityPeriod
from piwarden.vault.models import DataKey
from tests.concurrency import at_once
from tests.conftest import consultation_data

pytestmark = pytest.mark.django_db

LANGUAGES = [
    pytest.param("zh-hans", "/consultation/", id="zh"),
    pytest.param("en", "/en/consultation/", id="en"),
]
STORED = (Inquiry, Person, ConsentRecord, AuditEvent, DataKey, DBTaskResult)
TEXT_FIELDS = ("name", "phone", "email", "company", "position")
MARKUP = ("<script>alert(1)</script>", "<b>x</b>", '"><img src=x onerror=alert(1)>')
HOUR = datetime.timedelta(hours=1)
SQL = ("'; DROP TABLE inquiries_inquiry; --", "1 OR 1=1", "admin'--")


# --- reading the page ---------------------------------------------------------------


@dataclass
class _Group:
    names: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


class _FormPage(HTMLParser):
    """Which error text sits inside which field's box, and what the page-level alert says.

    A field's box is the element with class ``field`` (``div.field`` or the
    CAPTCHA's ``fieldset.field``); its error is the text of the ``field-error``
    element inside it.  Hidden fields report in the alert above the form.
    """

    VOID = frozenset({"input", "img", "br", "hr", "meta", "link", "source", "wbr", "col", "area", "base"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.groups: list[_Group] = []
        self.alerts: list[str] = []
        self._stack: list[tuple[str, _Group | None, bool, bool]] = []  # tag, group opened, in error, in alert

    def _state(self) -> tuple[_Group | None, bool, bool]:
        group, in_error, in_alert = None, False, False
        for _tag, g, e, a in self._stack:
            group = g or group
            in_error = in_error or e
            in_alert = in_alert or a
        return group, in_error, in_alert

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        group, _in_error, _in_alert = self._state()
        if tag in {"input", "select", "textarea"} and group is not None and attributes.get("name"):
            group.names.add(attributes["name"] or "")
        if tag in self.VOID:
            return
        opened = None
        if "field" in classes:
            opened = _Group()
            self.groups.append(opened)
        if "alert" in classes:
            self.alerts.append("")
        self._stack.append((tag, opened, "field-error" in classes, "alert" in classes))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        group, in_error, in_alert = self._state()
        if in_error and group is not None:
            group.errors.append(data)
        if in_alert:
            self.alerts[-1] += data


def read_form_page(response: Any) -> tuple[dict[str, str], str]:
    """({field name: its error text}, the page-level alert text)."""
    page = _FormPage()
    page.feed(response.content.decode())
    errors: dict[str, str] = {}
    for group in page.groups:
        text = " ".join(" ".join(group.errors).split())
        if not text:
            continue
        for name in group.names:
            if name in {"captcha_0", "captcha_1", "new_captcha"}:
                name = "captcha"  # noqa: PLW2901  # the CAPTCHA's inputs and its "new picture" button are one field
            errors[name] = text
    return errors, " ".join(" ".join(page.alerts).split())


# A refused form leaves the record of its refusal for the security role (which form or which rate
# limit, never a value typed or the client): not a store of what was sent.
REFUSAL_RECORDS = (EventType.CAPTCHA_FAILED, EventType.RATE_LIMITED)


def stored_counts() -> dict[str, int]:
    counts = {model.__name__: model.objects.count() for model in STORED}
    counts["AuditEvent"] = AuditEvent.objects.exclude(event_type__in=REFUSAL_RECORDS).count()
    return counts


def assert_nothing_stored() -> None:
    assert stored_counts() == dict.fromkeys(stored_counts(), 0)


def assert_not_echoed_raw(response: Any, *values: str) -> None:
    body = response.content.decode()
    for value in values:
        if any(c in value for c in "<>\"'&"):
            assert value not in body, f"{value!r} is echoed unescaped"
    assert "<script>alert(1)</script>" not in body
    assert "<img src=x" not in body
    assert "<b>x</b>" not in body


def assert_chinese(text: str) -> None:
    assert any("\u4e00" <= c <= "\u9fff" for c in text), f"not Chinese: {text!r}"


# --- the messages, as the visitor reads them ------------------------------------------
#
# Each message is its English text (the msgid, which /en/ pages show verbatim) and is
# looked up in the page's language when asserted, so a zh-hans page must show the
# catalogue's Chinese text, and ``in_language`` insists that it is Chinese.

Message = Callable[[], str]


def text(english: str) -> Message:
    return lambda: gettext(english)


def in_language(message: Message, language: str) -> str:
    with translation.override(language):
        shown = message()
    if language != "en":
        assert_chinese(shown)
    return shown


REQUIRED = text("This field is required.")
NAME_CHARS = text("A name may contain letters, spaces, dots, hyphens and apostrophes only.")
COMPANY_CHARS = text("A company name may contain letters, digits, spaces and . , & ( ) - / only.")
POSITION_CHARS = text("A position may contain letters, digits, spaces and . , & ( ) - / only.")
EMAIL_INVALID = text("Enter a valid email address.")
PHONE_INVALID = text(
    "This is not a valid phone number. Numbers outside mainland China start with + and the country code."
)
CONSENT_MISSING = text("Please tick the box to agree, or we cannot process your request.")
AGE_MISSING = text(
    "Please confirm your age, or that your parent or guardian agreed: without it we cannot take your request. "
    "If you are younger and have no guardian's consent, please ask them first."
)
CAPTCHA_WRONG = text("The verification code is wrong; please type the new one.")
FORM_DAMAGED = text("This form is damaged or out of date. Please reload the page and fill it in again.")
ONE_VALUE = text("Please give only one value.")
NOT_SENT = text("Your request was not sent. Please correct the marked fields.")
TOO_MANY_REQUESTS = text("Too many requests came from your network in a short time, so this one was not accepted.")


def too_long(limit: int, length: int = 10_000) -> Message:
    def message() -> str:
        template = ngettext(
            "Ensure this value has at most %(limit_value)d character (it has %(show_value)d).",
            "Ensure this value has at most %(limit_value)d characters (it has %(show_value)d).",
            limit,
        )
        return template % {"limit_value": limit, "show_value": length}

    return message


def not_a_choice(value: str) -> Message:
    return lambda: gettext("Select a valid choice. %(value)s is not one of the available choices.") % {"value": value}


CHARACTER_ERRORS = {"name": NAME_CHARS, "company": COMPANY_CHARS, "position": POSITION_CHARS}
LIMITS = {"name": 100, "phone": 32, "email": 254, "company": 200, "position": 100}
REQUIRED_FIELDS = ("name", "phone", "email", "company", "industry", "position", "region", "product", "captcha")


def case(case_id: str, overrides: dict[str, Any], expected: dict[str, Message], *marks: Any) -> Any:
    return pytest.param(overrides, expected, id=case_id, marks=marks)


def _missing() -> Iterator[Any]:
    for name in REQUIRED_FIELDS:
        if name == "captcha":
            yield case("empty-captcha", {"captcha_0": "", "captcha_1": ""}, {"captcha": REQUIRED})
        else:
            yield case(f"empty-{name}", {name: ""}, {name: REQUIRED})
    yield case("blank-name", {"name": "   \t "}, {"name": REQUIRED})
    yield case("no-consent", {"consent": None}, {"consent": CONSENT_MISSING}, pytest.mark.duty("CON-02"))
    yield case("consent-off", {"consent": ""}, {"consent": CONSENT_MISSING}, pytest.mark.duty("CON-02"))
    # Policy §八: the visitor confirms being old enough, or a guardian's consent.
    yield case("no-age", {"age_confirmed": None}, {"age_confirmed": AGE_MISSING}, pytest.mark.duty("CHD-01"))
    yield case("age-off", {"age_confirmed": ""}, {"age_confirmed": AGE_MISSING}, pytest.mark.duty("CHD-01"))


def _too_long() -> Iterator[Any]:
    for name in TEXT_FIELDS:
        if name == "email":
            value = "a" * (10_000 - len("@example.com")) + "@example.com"
        else:
            value = ("x" if name in CHARACTER_ERRORS else "1") * 10_000
        yield case(f"10k-{name}", {name: value}, {name: too_long(LIMITS[name])})


def _wrong_types() -> Iterator[Any]:
    yield case("two-names", {"name": ["Alice Smith", "Bob Jones"]}, {"name": ONE_VALUE})
    yield case("two-regions", {"region": ["CN", "US"]}, {"region": ONE_VALUE})
    yield case("unknown-industry", {"industry": "piracy"}, {"industry": not_a_choice("piracy")})
    yield case("unknown-product", {"product": "nuclear"}, {"product": not_a_choice("nuclear")})
    for region in ("XX", "ZZ"):
        yield case(f"unknown-region-{region}", {"region": region}, {"region": not_a_choice(region)})


def _markup_and_sql() -> Iterator[Any]:
    for i, value in enumerate(MARKUP):
        for name, message in CHARACTER_ERRORS.items():
            yield case(f"markup{i}-{name}", {name: value}, {name: message})
    for i, value in enumerate(SQL):
        for name, message in CHARACTER_ERRORS.items():
            yield case(f"sql{i}-{name}", {name: value}, {name: message})
        phone_error = too_long(LIMITS["phone"], len(value)) if len(value) > LIMITS["phone"] else PHONE_INVALID
        yield case(f"sql{i}-phone", {"phone": value}, {"phone": phone_error})
        yield case(f"sql{i}-email", {"email": value}, {"email": EMAIL_INVALID})


def _malformed() -> Iterator[Any]:
    for value in ("12345", "abc", "+86 000"):
        yield case(f"phone-{value}", {"phone": value}, {"phone": PHONE_INVALID})
    for value in ("a@", "@b.com", "a b@c.com"):
        yield case(f"email-{value}", {"email": value}, {"email": EMAIL_INVALID})


def _cases() -> list[Any]:
    return [*_missing(), *_too_long(), *_wrong_types(), *_markup_and_sql(), *_malformed()]


def _values(overrides: dict[str, Any]) -> list[str]:
    values: list[str] = []
    for value in overrides.values():
        values.extend(value if isinstance(value, list) else [value] if value else [])
    return values


@pytest.mark.parametrize(("language", "url"), LANGUAGES)
@pytest.mark.parametrize(("overrides", "expected"), _cases())
def test_bad_input_is_refused_next_to_its_field_and_stores_nothing(client, language, url, overrides, expected):
    response = client.post(url, consultation_data(**overrides))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Language"] == language
    errors, alert = read_form_page(response)
    assert set(errors) == set(expected), errors  # next to the right field, and only there
    for name, message in expected.items():
        assert in_language(message, language) in errors[name]
    assert in_language(NOT_SENT, language) in alert  # the summary above the form
    assert_not_echoed_raw(response, *_values(overrides))
    assert_nothing_stored()


@pytest.mark.parametrize(("language", "url"), LANGUAGES)
def test_an_empty_body_marks_every_required_field(client, language, url):
    response = client.post(url, {})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    errors, alert = read_form_page(response)
    assert set(errors) == {*REQUIRED_FIELDS, "consent", "age_confirmed"}
    for name in REQUIRED_FIELDS:
        assert in_language(REQUIRED, language) in errors[name]
    assert in_language(CONSENT_MISSING, language) in errors["consent"]
    assert in_language(AGE_MISSING, language) in errors["age_confirmed"]
    assert in_language(FORM_DAMAGED, language) in alert  # the hidden submission token reports above the form
    assert_nothing_stored()


@pytest.mark.parametrize(("language", "url"), LANGUAGES)
def test_a_malformed_submission_token_is_refused(client, language, url):
    response = client.post(url, consultation_data(submission_token="not-a-uuid"))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    errors, alert = read_form_page(response)
    assert errors == {}  # a hidden field: its error is in the alert above the form
    assert in_language(FORM_DAMAGED, language) in alert
    assert "not-a-uuid" not in alert
    assert_nothing_stored()


# --- the CAPTCHA, for real ----------------------------------------------------------


@pytest.fixture
def real_captcha(monkeypatch):
    monkeypatch.setattr("captcha.conf.settings.CAPTCHA_TEST_MODE", False)
    hashkey = CaptchaStore.generate_key()
    return CaptchaStore.objects.get(hashkey=hashkey)


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize(("language", "url"), LANGUAGES)
def test_a_wrong_captcha_answer_is_refused_and_the_challenge_is_used_up(client, language, url, real_captcha):
    wrong = "x" + real_captcha.response  # never the answer
    response = client.post(url, consultation_data(captcha_0=real_captcha.hashkey, captcha_1=wrong))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    errors, _alert = read_form_page(response)
    assert set(errors) == {"captcha"}
    assert in_language(CAPTCHA_WRONG, language) in errors["captcha"]
    assert not CaptchaStore.objects.filter(hashkey=real_captcha.hashkey).exists()  # one attempt per challenge
    assert_nothing_stored()
    # The right answer to the used-up challenge does not pass either.
    again = client.post(url, consultation_data(captcha_0=real_captcha.hashkey, captcha_1=real_captcha.response))
    assert again.status_code == HTTPStatus.BAD_REQUEST
    assert_nothing_stored()


@pytest.mark.parametrize(("language", "url"), LANGUAGES)
def test_an_unknown_captcha_key_is_refused(client, language, url, real_captcha):
    response = client.post(url, consultation_data(captcha_0="0" * 40, captcha_1=real_captcha.response))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    errors, _alert = read_form_page(response)
    assert set(errors) == {"captcha"}
    assert in_language(CAPTCHA_WRONG, language) in errors["captcha"]
    assert_nothing_stored()


def test_the_right_captcha_answer_passes(client, real_captcha):
    """The control for the two tests above: with test mode off, a real answer still works."""
    response = client.post(
        "/en/consultation/",
        consultation_data(captcha_0=real_captcha.hashkey, captcha_1=real_captcha.response.upper()),
    )
    assert response.status_code == HTTPStatus.FOUND
    assert Inquiry.objects.count() == 1


def test_an_expired_challenge_is_refused_and_used_up(client, real_captcha):
    CaptchaStore.objects.filter(pk=real_captcha.pk).update(expiration=timezone.now() - datetime.timedelta(seconds=1))
    response = client.post(
        "/en/consultation/", consultation_data(captcha_0=real_captcha.hashkey, captcha_1=real_captcha.response)
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    errors, _alert = read_form_page(response)
    assert set(errors) == {"captcha"}
    assert not CaptchaStore.objects.filter(hashkey=real_captcha.hashkey).exists()
    assert_nothing_stored()


@pytest.mark.duty("RET-02")
@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
def test_an_answer_is_checked_and_used_up_in_one_statement_and_other_challenges_are_left(client, real_captcha, right):
    """No write of the library's own: expired challenges are the housekeeping's (test_housekeeping)."""
    expired = CaptchaStore.objects.create(challenge="AB", response="ab", expiration=timezone.now() - HOUR)
    answer = real_captcha.response if right else "x" + real_captcha.response
    with CaptureQueriesContext(connection) as queries:
        client.post("/en/consultation/", consultation_data(captcha_0=real_captcha.hashkey, captcha_1=answer))
    table = CaptchaStore._meta.db_table
    touching = [q["sql"] for q in queries.captured_queries if table in q["sql"]]
    # A refused form is shown again with a new picture: that one INSERT is the page's, not the check's.
    [statement] = [sql for sql in touching if not sql.startswith("INSERT")]
    assert statement.startswith("DELETE")
    assert "RETURNING" in statement
    assert len(touching) == (1 if right else 2)
    assert Inquiry.objects.count() == (1 if right else 0)
    assert expired.hashkey in set(CaptchaStore.objects.values_list("hashkey", flat=True))
    assert real_captcha.hashkey not in set(CaptchaStore.objects.values_list("hashkey", flat=True))


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: no test transaction around it
def test_the_counts_and_the_challenges_use_are_committed_in_one_transaction_before_the_submission(client, real_captcha):
    """The rate limit's count, the risk rules' count and the CAPTCHA's use are one short write
    transaction (@rate_limit(joined=...)), ended before the submission's opens: a submission the
    gate then refuses (a restricted person) rolls none of them back."""
    first = client.post("/en/consultation/", consultation_data(captcha_0=real_captcha.hashkey, captcha_1="x"))
    assert first.status_code == HTTPStatus.BAD_REQUEST  # a wrong answer: only to warm up the process
    key = CaptchaStore.generate_key()
    answer = CaptchaStore.objects.get(hashkey=key).response
    stored = client.post("/en/consultation/", consultation_data(captcha_0=key, captcha_1=answer))
    assert stored.status_code == HTTPStatus.FOUND
    Person.objects.update(restricted_at=timezone.now())
    key = CaptchaStore.generate_key()
    answer = CaptchaStore.objects.get(hashkey=key).response
    counted = sum(RateCounter.objects.values_list("count", flat=True))
    with CaptureQueriesContext(connection) as queries:
        refused = client.post("/en/consultation/", consultation_data(captcha_0=key, captcha_1=answer, name="Zhang"))
    assert refused.status_code == HTTPStatus.CONFLICT
    assert not CaptchaStore.objects.filter(hashkey=key).exists()  # used up
    assert sum(RateCounter.objects.values_list("count", flat=True)) == counted + 2  # the rate's and the risk's
    statements = [q["sql"] for q in queries.captured_queries]
    begins = [i for i, sql in enumerate(statements) if sql.startswith("BEGIN")]
    # The counts' transaction, the submission's (rolled back), the refusal's record (the gate's own).
    assert len(begins) == 3, statements
    counts = [i for i, sql in enumerate(statements) if RateCounter._meta.db_table in sql]
    table = CaptchaStore._meta.db_table
    [take] = [i for i, sql in enumerate(statements) if sql.startswith("DELETE") and table in sql]
    commit = statements.index("COMMIT")
    assert begins[0] < min(counts)
    assert max(counts) < take < commit < begins[1]


def test_a_replay_whose_challenge_is_used_up_is_shown_the_first_request(client, real_captcha):
    """The replay's CAPTCHA cannot pass again (it was used up), yet the visitor sees what was received."""
    data = consultation_data(captcha_0=real_captcha.hashkey, captcha_1=real_captcha.response)
    first = client.post("/en/consultation/", data)
    assert first.status_code == HTTPStatus.FOUND
    after_first = stored_counts()
    again = client.post("/en/consultation/", data)
    assert again.status_code == HTTPStatus.FOUND
    assert again["Location"] == first["Location"] + "&again=1"
    assert stored_counts() == after_first


def test_a_valid_form_is_not_looked_up_before_it_is_stored(client):
    """The unique submission token catches a replay on the valid path: no SELECT for it first."""
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/en/consultation/", consultation_data())
    assert response.status_code == HTTPStatus.FOUND
    table = Inquiry._meta.db_table
    assert [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and table in q["sql"]] == []


# --- replays, methods, garbage ------------------------------------------------------


@pytest.mark.parametrize(("language", "url"), LANGUAGES)
def test_a_replayed_form_creates_nothing_and_says_so(client, language, url):
    data = consultation_data()
    first = client.post(url, data)
    assert first.status_code == HTTPStatus.FOUND
    after_first = stored_counts()
    assert after_first["Inquiry"] == 1
    # The same form again, and the same token with other details: both are the first request.
    for body in (data, {**data, "name": "Li Na", "email": "li.na@example.com"}):
        again = client.post(url, body)
        assert again.status_code == HTTPStatus.FOUND
        assert again["Location"] == first["Location"] + "&again=1"
        assert stored_counts() == after_first
    assert Inquiry.objects.get().name == data["name"]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_only_get_head_and_post_are_allowed(client, method):
    response = getattr(client, method)("/en/consultation/", consultation_data())
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}
    assert_nothing_stored()


def test_ten_kilobytes_of_garbage_keys_are_a_bad_request(client):
    garbage = {f"junk{i:04d}<script>": "'; DROP TABLE x; --" for i in range(500)}
    response = client.post("/en/consultation/", garbage)
    assert len("&".join(f"{k}={v}" for k, v in garbage.items())) > 10_000
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert_not_echoed_raw(response, *garbage)
    assert_nothing_stored()


def test_more_fields_than_django_accepts_are_too_large(client):
    response = client.post("/en/consultation/", {**consultation_data(), **{f"k{i}": "v" for i in range(2000)}})
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert "Request too large" in response.content.decode()
    assert_nothing_stored()


@pytest.mark.parametrize("content_type", ["application/octet-stream", "application/json", "text/plain"])
def test_a_body_that_is_not_a_form_is_a_bad_request(client, content_type):
    response = client.post("/en/consultation/", b"\x00\xff<script>" * 2000, content_type=content_type)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert_nothing_stored()


# --- rate limit --------------------------------------------------------------------


def _wait_for_a_fresh_window(rate: str) -> None:
    """Do not start the four posts in the last seconds of a rate-limit window."""
    _limit, window = window_of(rate)
    left = window - time.time() % window
    if left < 10:  # the four posts take well under a second
        threading.Event().wait(left + 1)


@pytest.mark.parametrize(("language", "url"), LANGUAGES)
def test_the_fourth_post_in_a_minute_is_refused_by_the_rate_limit_with_retry_after(client, settings, language, url):
    settings.PIWARDEN_CONSULTATION_RATE = "3/m"
    _wait_for_a_fresh_window("3/m")
    for _ in range(3):
        assert client.post(url, consultation_data(), REMOTE_ADDR="198.51.100.7").status_code == HTTPStatus.FOUND
    before = stored_counts()
    assert before["Inquiry"] == 3

    refused = client.post(url, consultation_data(), REMOTE_ADDR="198.51.100.7")
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    # The seconds left in this minute's window (counted when the request was), not a fixed guess.
    left_now = 60 - int(time.time()) % 60
    assert left_now <= int(refused["Retry-After"]) <= left_now + 2
    _errors, alert = read_form_page(refused)
    assert in_language(TOO_MANY_REQUESTS, language) in alert
    assert stored_counts() == before

    other = client.post(url, consultation_data(), REMOTE_ADDR="203.0.113.9")
    assert other.status_code == HTTPStatus.FOUND
    assert Inquiry.objects.count() == 4


def test_the_new_picture_button_and_the_page_itself_are_not_counted(client, settings):
    settings.PIWARDEN_CONSULTATION_RATE = "1/m"
    _wait_for_a_fresh_window("1/m")
    for _ in range(3):
        assert client.get("/en/consultation/", REMOTE_ADDR="198.51.100.8").status_code == HTTPStatus.OK
        picture = client.post("/en/consultation/", {"new_captcha": "1"}, REMOTE_ADDR="198.51.100.8")
        assert picture.status_code == HTTPStatus.OK
    assert client.post("/en/consultation/", consultation_data(), REMOTE_ADDR="198.51.100.8").status_code == 302
    assert client.post("/en/consultation/", consultation_data(), REMOTE_ADDR="198.51.100.8").status_code == 429


# --- a double click that races itself -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_posts_of_one_form_store_one_request():
    data = consultation_data()
    responses = at_once(lambda: Client().post("/consultation/", data))
    assert [r.status_code for r in responses] == [HTTPStatus.FOUND, HTTPStatus.FOUND]
    inquiry = Inquiry.objects.get()
    for response in responses:
        assert response["Location"].startswith(f"/consultation/received/?ref={inquiry.reference}")
    assert Person.objects.count() == 1
    # One person's key (the month's key of the security events is no person's).
    assert DataKey.objects.exclude(pk__in=SecurityPeriod.objects.values("data_key")).count() == 1
    assert ConsentRecord.objects.count() == 1
    assert DBTaskResult.objects.count() == 2  # one acknowledgement, one sales notice
    assert AuditEvent.objects.count() == 3
    assert verify_chain() is None


# At most this many SQL statements for a new person's consultation request, everything included:
# rate limit (and its sweep of old windows, once in ten minutes), CAPTCHA, person and data key,
# consent, the request, its audit events (one batch), the two e-mails; here also two savepoint
# pairs inside the test's own transaction, which are BEGIN and COMMIT in production (the counts'
# short transaction, with the cessation's read and the CAPTCHA's use, and the submission's); the
# risk rules' day counter and the request's security event (piwarden.security; the month's key
# made before).  In production, without the sweep and the month's key: 14 (bench/consultation.py).
POST_STATEMENT_BUDGET = 18


def test_a_new_persons_request_costs_at_most_the_statement_budget(client, real_captcha):
    body = consultation_data(captcha_0=real_captcha.hashkey, captcha_1=real_captcha.response)
    period_keys()  # the month's key, made once a month
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/en/consultation/", body)
    assert response.status_code == HTTPStatus.FOUND
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) <= POST_STATEMENT_BUDGET, "\n".join(s[:120] for s in statements)
    assert Inquiry.objects.count() == 1
