"""`piwarden cessation execute` killed in the middle (SIGKILL of the real process) loses nothing and
repeats nothing: the next run erases exactly the people left, each once, and the audit log holds one
start, one end and batch events that add up to everyone.  `piwarden cessation notify` killed while
the mail server has a notice it has not confirmed yet sends nobody a second one by itself: the
next run sends the rest, and the one in doubt waits for the operator."""

from __future__ import annotations

import datetime
import signal

import pytest
import time_machine
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from piwarden.audit.log import EventType
from piwarden.audit.models import AuditEvent
from piwarden.cessation import actions
from piwarden.cessation.models import Cessation, CessationNotice
from piwarden.people import ledger
from piwarden.people.models import Person
from tests.cessation.helpers import REASON, a_month_ahead, announce, consults, notices_to
from tests.cessation.test_actions import run
from tests.commands import killed_when, piwarden

PEOPLE = 60


@pytest.mark.django_db(transaction=True)
@pytest.mark.duty("RET-07")
def test_an_execution_killed_mid_way_is_finished_by_the_next_without_loss_or_repeat():
    today = timezone.localdate()
    # Two days ago they consulted us; yesterday the cessation was announced for today.
    with time_machine.travel(timezone.now() - datetime.timedelta(days=2), tick=True):
        client = Client()
        for n in range(PEOPLE):
            consults(client, "zh-hans" if n % 2 else "en")
    with time_machine.travel(timezone.now() - datetime.timedelta(days=1), tick=True):
        actions.announce(today, reason=REASON)
    assert Person.objects.filter(erased_at__isnull=True).count() == PEOPLE

    batches = AuditEvent.objects.filter(event_type=EventType.CESSATION_BATCH_ERASED)
    status = killed_when(["cessation", "execute", "--batch", "1"], lambda: batches.count() >= 3)
    assert status == -signal.SIGKILL
    left = Person.objects.filter(erased_at__isnull=True).count()
    assert 0 < left < PEOPLE, "killed mid-way: some erased, some not"
    assert Cessation.objects.get().executed_at is None

    finished = piwarden("cessation", "execute", "--batch", "7")
    assert finished.returncode == 0, finished.stderr
    assert f"{left} person(s) erased by this run, {PEOPLE} in all" in finished.stdout

    assert not Person.objects.filter(erased_at__isnull=True).exists()
    assert Cessation.objects.get().executed_at is not None
    assert sum(e.extra["persons"] for e in batches) == PEOPLE  # nothing counted twice, nothing missed
    shredded = AuditEvent.objects.filter(event_type=EventType.PERSON_SHREDDED)
    assert shredded.count() == PEOPLE
    assert not shredded.values("person_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert AuditEvent.objects.filter(event_type=EventType.CESSATION_STARTED).count() == 1
    assert AuditEvent.objects.filter(event_type=EventType.CESSATION_EXECUTED).count() == 1
    comparison = ledger.compare()
    assert comparison.unerased == []
    assert comparison.unrecorded == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.duty("RET-07")
def test_notices_killed_while_the_mail_server_answers_tell_nobody_twice_and_nobody_is_forgotten(smtp):
    client = Client()
    people = [consults(client, "zh-hans" if n % 2 else "en") for n in range(6)]
    announce(a_month_ahead(), "--no-send")
    # The mail server keeps the third notice but holds back its answer: the process is killed then.
    smtp.collector.hold = 3
    status = killed_when(["cessation", "notify"], lambda: len(smtp.collector.received) >= 3, **smtp.env)
    assert status == -signal.SIGKILL
    [in_doubt] = smtp.collector.received[2].rcpt_tos
    notices = CessationNotice.objects.all()
    assert notices.filter(sent_at__isnull=False).count() == 2
    assert notices.filter(claimed_at__isnull=False, sent_at__isnull=True).count() == 1

    assert "3 sent" in run("notify")
    assert {p.email: len(notices_to(smtp, p.email)) for p in people} == {p.email: 1 for p in people}
    assert "5 sent, 0 waiting, 0 not needed, 1 unconfirmed" in run("status")
    # The operator decides that the one in doubt is sent again: the only person told twice.
    run("notify", "--retry-unconfirmed")
    assert {p.email: len(notices_to(smtp, p.email)) for p in people} == {
        p.email: 2 if p.email == in_doubt else 1 for p in people
    }
    assert AuditEvent.objects.filter(event_type=EventType.CESSATION_NOTICE_SENT).count() == 6
