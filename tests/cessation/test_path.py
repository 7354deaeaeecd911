"""The whole cessation, as the operator and visitors live it, with time travel (issue 10 §2).

announce → the notice on every page, the forms closed, one notice per person (real SMTP server)
→ withdraw before the date → announce again → the date passes → execute → a canary scan of the
database (every row through SQL, and on SQLite the database files themselves) finds none of the
people's values, nor the look-up digests of their addresses and phones.
"""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import Client

from piwarden.audit.models import AuditEvent, EventType
from piwarden.cessation.models import Cessation
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.vault import blind
from piwarden.vault.models import DataKey
from tests.cessation.helpers import (
    REASON,
    Visitor,
    a_month_ahead,
    announce,
    asks_for_a_copy,
    consults,
    notices_to,
)
from tests.conftest import consultation_data
from tests.smtp import SMTPServer
from tests.vault.test_canary import assert_absent, assert_absent_from_every_row, read_if_present, sqlite_files

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("RET-07")]


def digests(visitor: Visitor) -> dict[str, str]:
    """The blind indexes of the visitor's e-mail and phone: what finds them without decrypting."""
    found = {"email_index": blind.email_index(visitor.email)}
    if "phone" in visitor.values:
        found["phone_index"] = blind.phone_index(visitor.values["phone"])
    return found


def shows_notice(client: Client, path: str, date: datetime.date, language: str) -> bool:
    body = client.get(path).content.decode()
    expected = (
        f"{date.year}年{date.month}月{date.day}日" if language == "zh-hans" else f"{date.day} {date:%B} {date.year}"
    )
    return 'class="cessation-notice"' in body and expected in body


def test_announce_withdraw_announce_execute_leaves_no_personal_value(smtp):
    client = Client()
    zhang = consults(client, "zh-hans")
    smith = consults(client, "en")
    li = asks_for_a_copy(smtp, "zh-hans")
    both = consults(client, "en")
    asks_for_a_copy(smtp, "en", email=both.email)  # one person, two sources: one notice
    people = [zhang, smith, li, both]
    assert not shows_notice(client, "/", a_month_ahead(), "zh-hans")

    # Announced: the notice on every public page, in both languages.
    first_date = a_month_ahead()
    announce(first_date)
    for path, language in [("/", "zh-hans"), ("/en/", "en"), ("/privacy/", "zh-hans"), ("/en/contact/", "en")]:
        assert shows_notice(client, path, first_date, language), path
    forms_are_closed(client)

    # One notice each, in their language, even when the sending runs again (command, housekeeping).
    call_command("cessation", "notify", stdout=io.StringIO(), stderr=io.StringIO())
    call_command("housekeeping", "--once", stdout=io.StringIO(), stderr=io.StringIO())
    everyone_is_told_once(smtp, people, first_date)

    # Withdrawn before the date: the notice goes, the form is back.
    call_command("cessation", "withdraw", "--reason", "The board kept the site open", stdout=io.StringIO())
    assert not shows_notice(client, "/", first_date, "zh-hans")
    assert 'name="email"' in client.get("/en/consultation/").content.decode()

    # Announced again: a new notice each (a new date), once.
    date = first_date + datetime.timedelta(days=10)
    announce(date)
    for visitor in people:
        assert len(notices_to(smtp, visitor.email)) == 2  # one per announcement
    # Before the date nothing can be erased.
    with pytest.raises(Exception, match="Nothing is erased before the date"):
        call_command("cessation", "execute", stdout=io.StringIO(), stderr=io.StringIO())

    for visitor in people:  # the control: the look-up digests are in the database now
        assert Person.objects.filter(email_index=digests(visitor)["email_index"]).exists()

    with time_machine.travel(datetime.datetime.combine(date, datetime.time(9), tzinfo=datetime.UTC), tick=False):
        # The date has come: the rights portal closes too, and nothing more can be withdrawn.
        assert "Requests about your personal information are closed" in client.get("/en/rights/").content.decode()
        out = io.StringIO()
        call_command("cessation", "execute", "--batch", "2", stdout=out, stderr=io.StringIO())
        assert "4 person(s) erased by this run" in out.getvalue()
        assert "sign_in_records (184 days)" in out.getvalue()  # what the law keeps is listed
        status = io.StringIO()
        call_command("cessation", "status", stdout=status)
        assert f"The site ceased on {date:%Y-%m-%d}" in status.getvalue()
        assert "Notices sent: 4." in status.getvalue()
        assert shows_notice(client, "/en/", date, "en")
        assert "This website closed on" in client.get("/en/").content.decode()

    assert Person.objects.filter(erased_at__isnull=True).count() == 0
    assert not DataKey.objects.filter(person__isnull=False, destroyed_at__isnull=True).exists()
    assert Inquiry.objects.count() == 0
    cessation = Cessation.objects.get(live=True)
    assert cessation.persons_erased == 4
    assert AuditEvent.objects.filter(event_type=EventType.CESSATION_EXECUTED).count() == 1
    assert AuditEvent.objects.filter(event_type=EventType.CESSATION_BATCH_ERASED).count() == 2

    nothing_personal_is_left(people)


def forms_are_closed(client: Client) -> None:
    # The consultation form collects nothing: a page that explains, and a post stores nothing.
    page = client.get("/en/consultation/")
    assert page.status_code == 200
    assert "Consultation requests are closed" in page.content.decode()
    assert 'name="email"' not in page.content.decode()
    before = Inquiry.objects.count()
    posted = client.post("/consultation/", consultation_data(email="late@example.com"))
    assert posted.status_code == 200
    assert "您刚才提交的内容没有被保存" in posted.content.decode()
    assert Inquiry.objects.count() == before
    # The rights portal stays open until the date: people get their copy, or their erasure, first.
    assert 'name="email"' in client.get("/en/rights/").content.decode()


def everyone_is_told_once(smtp: SMTPServer, people: list[Visitor], date: datetime.date) -> None:
    for visitor in people:
        [subject] = notices_to(smtp, visitor.email)
        assert ("closes on" in subject) == (visitor.language == "en")  # else 停止运营: their language
    zhang = next(p for p in people if p.language == "zh-hans")
    [zh_notice] = [m for m in smtp.collector.to(zhang.email) if "停止运营" in m.subject]
    assert "/rights/" in zh_notice.body
    assert f"{date.year}年{date.month}月{date.day}日" in zh_notice.body


def nothing_personal_is_left(people: list[Visitor]) -> None:
    # The canary scan: no person's value, nor the digest that would find them, anywhere.
    for visitor in people:
        needles = {**visitor.values, **digests(visitor)}
        assert_absent_from_every_row(needles)
        if connection.vendor == "sqlite":
            for path in sqlite_files():
                assert_absent(read_if_present(Path(path)), path.name, needles)
    assert REASON in Cessation.objects.get(live=True).reason
