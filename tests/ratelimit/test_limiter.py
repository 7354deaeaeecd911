"""The per-client rate limit (``piwarden.ratelimit.limiter``): one statement, no address stored, shared.

Runs on whichever database ``DATABASE_URL`` names (SQLite by default, PostgreSQL in CI).
"""

from __future__ import annotations

import os
import time
from http import HTTPStatus
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from piwarden.environment import envrate, parse_rate
from piwarden.inquiries.models import Inquiry
from piwarden.ratelimit import limiter
from piwarden.ratelimit.models import RateCounter
from piwarden.vault.fields import BlindIndexField
from tests.concurrency import at_once
from tests.conftest import consultation_data

ADDRESS = "198.51.100.77"
T0 = 1_800_057_600  # a multiple of 60, 3600 and 86400: the start of a window for every unit


def request_from(address: str = ADDRESS) -> Any:
    return RequestFactory().post("/consultation/", REMOTE_ADDR=address)


@pytest.fixture
def swept_recently(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if this process had just swept: hits do not sweep (tests of the sweep reset this)."""
    monkeypatch.setattr(limiter, "_last_sweep", time.monotonic())


def all_rows() -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(RateCounter._meta.db_table)}")  # noqa: S608
        return list(cursor.fetchall())


# --- cost -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: no test transaction around it
@pytest.mark.usefixtures("swept_recently")
def test_a_hit_is_one_sql_statement_first_and_later():
    for expected_count in (1, 2, 3):
        with CaptureQueriesContext(connection) as queries:
            limit = limiter.hit(request_from(), "consultation", "5/m")
        assert limit.count == expected_count
        statements = [q["sql"] for q in queries.captured_queries]
        assert len(statements) == 1, statements
        assert statements[0].startswith("INSERT INTO")
        assert "ON CONFLICT" in statements[0]
        assert "RETURNING" in statements[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("swept_recently")
def test_the_consultation_post_spends_one_statement_on_its_rate_limit_and_one_on_its_risk_rule(client):
    client.post("/en/consultation/", consultation_data(email="first@example.com"))  # warm up
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/en/consultation/", consultation_data(email="second@example.com"))
    assert response.status_code == HTTPStatus.FOUND
    statements = [q["sql"] for q in queries.captured_queries]
    counter = [sql for sql in statements if RateCounter._meta.db_table in sql]
    assert len(counter) == 2, counter  # the rate limit's, then the risk rules' day counter (piwarden.security.risk)
    # First, before the CAPTCHA, the form and the submission's transaction, in one short write
    # transaction of their own (@rate_limit(joined=...)); between them only the cessation's
    # standing, asked fresh before anything is stored (piwarden.cessation.state).
    before = statements[: statements.index(counter[-1]) + 1]
    assert before[0].startswith("BEGIN")
    assert [sql for sql in before[1:] if sql not in counter and "cessation_cessation" not in sql] == []
    assert not [sql for sql in statements if "cache" in sql.lower()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("swept_recently")
def test_a_post_whose_submission_rolls_back_is_still_counted(client, settings):
    """The count is a write of its own, before the view, and not part of the submission's
    transaction: a replayed form, whose transaction ends on a unique index and rolls back,
    still uses up one request of the rate (in the submission's transaction it would not count)."""
    settings.PIWARDEN_CONSULTATION_RATE = "2/d"
    body = consultation_data()
    first = client.post("/en/consultation/", body)
    replay = client.post("/en/consultation/", body)
    assert first.status_code == replay.status_code == HTTPStatus.FOUND
    assert "again=1" in replay["Location"]  # the first request, shown again: nothing was stored
    assert Inquiry.objects.count() == 1
    third = client.post("/en/consultation/", consultation_data(email="someone.else@example.com"))
    assert third.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert Inquiry.objects.count() == 1


# --- what is stored -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("swept_recently")
@pytest.mark.parametrize(
    ("address", "forms"),
    [
        pytest.param(ADDRESS, [ADDRESS], id="ipv4"),
        pytest.param("2001:db8:1234:5678:9abc::1", ["2001:db8:1234:5678", "2001:db8:1234:5678::"], id="ipv6"),
    ],
)
def test_the_client_address_is_never_stored(address, forms):
    limiter.hit(request_from(address), "consultation", "5/m")
    rows = all_rows()
    assert len(rows) == 1
    for value in rows[0]:
        text = bytes(value).decode("latin-1") if isinstance(value, bytes | memoryview) else str(value)
        for form in forms:
            assert form not in text
    assert isinstance(RateCounter._meta.get_field("bucket"), BlindIndexField)
    assert RateCounter.objects.get().bucket == limiter.bucket_for(
        "consultation", limiter.client_address(request_from(address))
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("swept_recently")
def test_ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4():
    assert limiter.hit(request_from("2001:db8:1:2::1"), "consultation", "5/m", now=T0).count == 1
    assert limiter.hit(request_from("2001:db8:1:2:ffff::9"), "consultation", "5/m", now=T0).count == 2
    assert limiter.hit(request_from("2001:db8:1:3::1"), "consultation", "5/m", now=T0).count == 1
    assert limiter.hit(request_from("203.0.113.5"), "consultation", "5/m", now=T0).count == 1
    assert limiter.hit(request_from("::ffff:203.0.113.5"), "consultation", "5/m", now=T0).count == 2


@pytest.mark.parametrize("address", ["", "unix:/run/gunicorn.sock", "not an address"])
def test_a_request_without_a_client_address_is_a_configuration_error(address):
    with pytest.raises(ImproperlyConfigured, match="REMOTE_ADDR"):
        limiter.client_address(request_from(address))


# --- counting -------------------------------------------------------------------------------


@pytest.mark.duty("SEC-01")
@pytest.mark.django_db
@pytest.mark.usefixtures("swept_recently")
def test_the_request_over_the_rate_is_limited_and_others_are_not():
    outcomes = [limiter.hit(request_from(), "consultation", "3/m", now=T0 + 5).limited for _ in range(5)]
    assert outcomes == [False, False, False, True, True]
    assert not limiter.hit(request_from("203.0.113.9"), "consultation", "3/m", now=T0 + 5).limited


@pytest.mark.django_db
@pytest.mark.usefixtures("swept_recently")
def test_two_scopes_do_not_share_a_count():
    for _ in range(3):
        limiter.hit(request_from(), "consultation", "3/m", now=T0)
    other = limiter.hit(request_from(), "newsletter", "3/m", now=T0)
    assert other.count == 1
    assert not other.limited
    assert RateCounter.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("swept_recently")
def test_a_new_window_starts_from_zero():
    for _ in range(4):
        last = limiter.hit(request_from(), "consultation", "3/m", now=T0 + 59)
    assert last.limited
    fresh = limiter.hit(request_from(), "consultation", "3/m", now=T0 + 60)
    assert fresh.count == 1
    assert not fresh.limited
    assert sorted(RateCounter.objects.values_list("window_start", "count")) == [(T0, 4), (T0 + 60, 1)]


@pytest.mark.django_db
@pytest.mark.usefixtures("swept_recently")
@pytest.mark.parametrize(("rate", "window"), [("5/s", 1), ("5/m", 60), ("5/h", 3600), ("5/d", 86400)])
def test_retry_after_is_the_time_left_in_the_window(rate, window):
    assert limiter.hit(request_from(), "consultation", rate, now=T0).retry_after == window
    assert limiter.hit(request_from(), "consultation", rate, now=T0 + window - 1).retry_after == 1
    assert limiter.hit(request_from(), "consultation", rate, now=T0 + window - 0.5).retry_after == 1
    for offset in (0.25, window / 3, window / 2, window - 1.75):
        retry_after = limiter.hit(request_from(), "consultation", rate, now=T0 + offset).retry_after
        assert 1 <= retry_after <= window
        assert retry_after == window - int(offset)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("swept_recently")
def test_concurrent_hits_on_one_bucket_are_all_counted():
    """Two threads, each with its own database connection (as two server processes would have)."""

    def hammer() -> None:
        for _ in range(20):
            limiter.hit(request_from(), "consultation", "1000/d", now=T0)

    at_once(hammer)
    assert list(RateCounter.objects.values_list("window_start", "count")) == [(T0, 40)]


# --- old windows -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_windows_older_than_a_day_are_swept_at_most_once_per_interval(monkeypatch):
    now = T0 + 10 * 86400
    RateCounter.objects.create(window_start=now - 86400 - 60, bucket="a" * 64, count=3)  # over a day old
    RateCounter.objects.create(window_start=now - 86400 + 60, bucket="b" * 64, count=3)  # not yet a day old
    monkeypatch.setattr(limiter, "_last_sweep", 0.0)  # this process has not swept yet

    with CaptureQueriesContext(connection) as queries:
        limiter.hit(request_from(), "consultation", "5/m", now=now)
    assert [q["sql"].split(None, 1)[0] for q in queries.captured_queries] == ["INSERT", "DELETE"]
    remaining = set(RateCounter.objects.values_list("bucket", flat=True))
    assert "a" * 64 not in remaining  # over a day old: deleted
    assert "b" * 64 in remaining
    assert len(remaining) == 2  # the recent row and the one just counted

    RateCounter.objects.create(window_start=now - 2 * 86400, bucket="c" * 64, count=1)
    with CaptureQueriesContext(connection) as queries:
        limiter.hit(request_from(), "consultation", "5/m", now=now)
    assert len(queries.captured_queries) == 1  # swept less than ten minutes ago: no DELETE
    assert RateCounter.objects.filter(bucket="c" * 64).exists()

    monkeypatch.setattr(limiter, "_last_sweep", time.monotonic() - limiter.SWEEP_EVERY_SECONDS - 1)
    limiter.hit(request_from(), "consultation", "5/m", now=now)
    assert not RateCounter.objects.filter(bucket="c" * 64).exists()


# --- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("5/m", (5, 60)), ("1/s", (1, 1)), (" 30/h ", (30, 3600)), ("2/d", (2, 86400))]
)
def test_a_rate_is_a_count_per_unit(text, expected):
    assert parse_rate(text) == expected
    assert limiter.window_of(text) == expected


BAD_RATES = ["x", "", "5", "5/", "/m", "0/m", "-1/m", "5/min", "5/10m", "5/M", "5.5/m", "five/m", "5/w"]


@pytest.mark.parametrize("text", BAD_RATES)
def test_a_bad_rate_is_a_configuration_error(text):
    with pytest.raises(ImproperlyConfigured, match="is not a rate like 5/m"):
        limiter.window_of(text)


@pytest.mark.parametrize("text", ["x", "5/min"])
def test_a_bad_rate_in_the_environment_names_the_variable(monkeypatch, text):
    monkeypatch.setitem(os.environ, "PIWARDEN_CONSULTATION_RATE", text)
    with pytest.raises(ImproperlyConfigured) as raised:
        envrate("PIWARDEN_CONSULTATION_RATE", "5/m")
    assert str(raised.value).startswith(f"PIWARDEN_CONSULTATION_RATE={text!r} is not a rate like 5/m")
