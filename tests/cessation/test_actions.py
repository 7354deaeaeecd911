"""The cessation's steps one by one: refusals that change nothing, notices exactly once through
failures and crashes, an erasure that resumes after a crash, the housekeeping on the date."""

from __future__ import annotations

import datetime
import io

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from piwarden.accounts.models import Account
from piwarden.audit.models import AuditEvent, EventType
from piwarden.cessation import actions, state
from piwarden.cessation.actions import CessationRefused
from piwarden.cessation.models import Cessation, CessationNotice
from piwarden.inquiries.models import Inquiry
from piwarden.people import contacts
from piwarden.people.actions import erase_person
from piwarden.people.models import Person
from piwarden.rights.models import RightsRequest
from tests.accounts.helpers import sign_up_data
from tests.cessation.helpers import (
    REASON,
    a_month_ahead,
    announce,
    asks_for_a_copy,
    consults,
    notices_to,
    opens_an_account,
)

pytestmark = [pytest.mark.django_db, pytest.mark.duty("RET-07")]


def on(date: datetime.date, hour: int = 9) -> time_machine.travel:
    """Time travel to ``hour`` o'clock PRC time on ``date``."""
    return time_machine.travel(
        datetime.datetime.combine(date, datetime.time(hour), tzinfo=timezone.get_default_timezone()), tick=False
    )


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("cessation", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_date_that_is_not_after_today_is_refused_and_changes_nothing():
    with pytest.raises(CessationRefused, match="after today"):
        actions.announce(timezone.localdate(), reason=REASON)
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        run("announce", "--date", "next week", "--reason", REASON)
    with pytest.raises(CessationRefused, match="at least 10"):
        actions.announce(a_month_ahead(), reason="closing")
    assert not Cessation.objects.exists()
    assert state.accepting_new_data()


def test_a_second_announcement_is_refused_while_one_is_live():
    actions.announce(a_month_ahead(), reason=REASON)
    with pytest.raises(CommandError, match="announced already"):
        run("announce", "--date", (a_month_ahead() + datetime.timedelta(days=1)).isoformat(), "--reason", REASON)
    assert Cessation.objects.count() == 1


def test_forms_ask_one_question_before_collecting():
    assert state.accepting_new_data()
    actions.announce(a_month_ahead(), reason=REASON)
    assert not state.accepting_new_data()
    assert state.rights_open()  # until the day before the date
    actions.withdraw(reason="The board kept the site open")
    assert state.accepting_new_data()
    assert AuditEvent.objects.filter(event_type=EventType.CESSATION_WITHDRAWN).count() == 1


def test_withdrawing_is_refused_from_the_date_on(smtp):
    date = a_month_ahead()
    actions.announce(date, reason=REASON)
    with on(date, hour=0):
        with pytest.raises(CommandError, match="can no longer be withdrawn"):
            run("withdraw", "--reason", "Too late to change our mind")
        assert not state.rights_open()
    assert Cessation.objects.get().live is True


def test_execution_is_refused_before_the_date():
    date = a_month_ahead()
    actions.announce(date, reason=REASON)
    with on(date - datetime.timedelta(days=1), hour=23), pytest.raises(CessationRefused, match="before the date"):
        actions.begin_execution()
    assert Cessation.objects.get().execution_started_at is None


def test_a_refused_recipient_is_retried_and_nobody_gets_two(smtp):
    client = Client()
    people = [consults(client, "zh-hans"), consults(client, "en"), consults(client, "en")]
    smtp.collector.refuse.add(people[1].email)
    with pytest.raises(CommandError, match="could not be sent"):
        announce(a_month_ahead())
    assert [len(notices_to(smtp, p.email)) for p in people] == [1, 0, 1]
    smtp.collector.refuse.clear()
    assert "1 sent" in run("notify")
    assert "0 sent" in run("notify")
    assert [len(notices_to(smtp, p.email)) for p in people] == [1, 1, 1]
    assert CessationNotice.objects.get(person__email_index__isnull=False, failures=1)
    assert AuditEvent.objects.filter(event_type=EventType.CESSATION_NOTICE_SENT).count() == 3


def test_a_notice_a_crash_left_unconfirmed_is_not_sent_again_unless_the_operator_says_so(smtp):
    client = Client()
    first, second = consults(client, "zh-hans"), consults(client, "en")
    announce(a_month_ahead(), "--no-send")
    # The process died after claiming the first notice, while talking to the mail server.
    claimed = CessationNotice.objects.order_by("pk")[:1].values_list("pk", flat=True)
    CessationNotice.objects.filter(pk__in=list(claimed)).update(claimed_at=timezone.now())
    run("notify")
    sent = {p.email: len(notices_to(smtp, p.email)) for p in (first, second)}
    assert sorted(sent.values()) == [0, 1]
    assert "1 unconfirmed" in run("status")
    run("notify", "--retry-unconfirmed")
    assert [len(notices_to(smtp, p.email)) for p in (first, second)] == [1, 1]
    assert "0 unconfirmed" in run("status")


def test_everyone_reachable_is_told_once_whatever_holds_their_address(smtp):
    client = Client()
    consultation = consults(client, "zh-hans")
    rights = asks_for_a_copy(smtp, "en")
    both = consults(client, "zh-hans")
    asks_for_a_copy(smtp, "en", email=both.email)
    assert {s.name for s in contacts.sources()} >= {"consultation", "rights_requests"}
    announce(a_month_ahead())
    assert [len(notices_to(smtp, p.email)) for p in (consultation, rights, both)] == [1, 1, 1]
    # In the language of the first source holding their address: the consultation's, then the request's.
    assert "停止运营" in notices_to(smtp, both.email)[0]
    assert "closes on" in notices_to(smtp, rights.email)[0]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_an_account_holder_who_never_wrote_to_us_is_told_once_in_their_language(smtp, language):
    holder = opens_an_account(smtp, language)
    unconfirmed = "unconfirmed-" + holder.email
    assert Client().post("/en/account/sign-up/", sign_up_data(email=unconfirmed)).status_code == 302
    assert not Inquiry.objects.exists()
    assert not RightsRequest.objects.exists()
    announce(a_month_ahead())
    [subject] = notices_to(smtp, holder.email)
    assert ("停止运营" if language == "zh-hans" else "closes on") in subject
    assert notices_to(smtp, unconfirmed) == []  # an address never confirmed may be someone else's
    run("notify")
    assert len(notices_to(smtp, holder.email)) == 1
    [sent] = AuditEvent.objects.filter(event_type=EventType.CESSATION_NOTICE_SENT)
    assert sent.person_id == Account.objects.get(email_verified_at__isnull=False).person_id


def test_someone_who_confirms_a_request_after_the_announcement_is_told_by_the_housekeeping(smtp):
    announce(a_month_ahead())
    late = asks_for_a_copy(smtp, "zh-hans")
    assert notices_to(smtp, late.email) == []
    call_command("housekeeping", "--once", stdout=io.StringIO(), stderr=io.StringIO())
    assert len(notices_to(smtp, late.email)) == 1
    assert AuditEvent.objects.filter(event_type=EventType.CESSATION_NOTICES_ADDED).count() == 1


def test_an_erased_person_is_not_written_to(smtp):
    client = Client()
    gone = consults(client, "en")
    erase_person(Person.objects.get(), reason="Asked by phone on 1 December")
    announce(a_month_ahead())
    assert notices_to(smtp, gone.email) == []


def test_the_erasure_resumes_after_a_crash_and_erases_each_person_once(smtp):
    client = Client()
    for language in ("zh-hans", "en", "zh-hans", "en", "en"):
        consults(client, language)
    date = a_month_ahead()
    announce(date)
    with on(date):
        cessation = actions.begin_execution()
        assert actions.erase_batch(cessation, size=2) == 2
        # ... the process dies here; the operator runs the command again.
        out = run("execute", "--batch", "2")
        assert "3 person(s) erased by this run, 5 in all" in out
        assert "0 person(s) erased by this run, 5 in all" in run("execute")  # once carried out: nothing more
    assert Person.objects.filter(erased_at__isnull=True).count() == 0
    assert AuditEvent.objects.filter(event_type=EventType.PERSON_SHREDDED).count() == 5
    batches = AuditEvent.objects.filter(event_type=EventType.CESSATION_BATCH_ERASED)
    assert sum(e.extra["persons"] for e in batches) == 5
    assert AuditEvent.objects.filter(event_type=EventType.CESSATION_STARTED).count() == 1
    assert AuditEvent.objects.filter(event_type=EventType.CESSATION_EXECUTED).count() == 1


def test_the_housekeeping_carries_it_out_on_the_date(smtp, settings):
    settings.PIWARDEN_RETENTION_CLOCK_SKEW = 24 * 400  # a month travelled: not a clock that jumped
    client = Client()
    consults(client, "zh-hans")
    date = a_month_ahead()
    announce(date)
    with on(date - datetime.timedelta(days=1), hour=23):
        call_command("housekeeping", "--once", stdout=io.StringIO(), stderr=io.StringIO())
        assert Person.objects.filter(erased_at__isnull=True).exists()
    with on(date, hour=1):
        out = io.StringIO()
        call_command("housekeeping", "--once", stdout=out, stderr=io.StringIO())
        assert "cessation carried out: 1 person(s) erased" in out.getvalue()
    assert not Person.objects.filter(erased_at__isnull=True).exists()
    assert Cessation.objects.get().executed_at is not None


def test_status_lists_what_the_law_keeps():
    out = run("status")
    assert "No cessation has been announced" in out
    actions.announce(a_month_ahead(), reason=REASON)
    out = run("status")
    assert REASON in out
    kept = {k.category for k in actions.kept()}
    assert {"sign_in_records", "access_records", "person_lifecycle"} <= kept
    assert "consultation" not in kept  # deleted
    assert "identifiers" not in kept  # cleared by the crypto-shredding
    for category in kept:
        assert f"  - {category} (" in out


def test_the_api_takes_rights_requests_until_the_day_before_the_date(smtp):
    date = a_month_ahead()
    actions.announce(date, reason=REASON)
    body = {"kind": "copy", "email": "api.user@example.com", "details": "", "acting_as": "self", "language": "en"}
    with on(date - datetime.timedelta(days=1), hour=23):
        taken = Client().post("/api/rights/requests", body, content_type="application/json")
        assert taken.status_code == 202, taken.content
    with on(date, hour=0):
        refused = Client().post(
            "/api/rights/requests", body, content_type="application/json", headers={"accept-language": "zh-hans"}
        )
    assert refused.status_code == 410
    assert refused.json()["error"] == "closed"
    assert RightsRequest.objects.count() == 1
