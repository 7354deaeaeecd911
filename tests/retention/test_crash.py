"""A sweep killed in the middle (SIGKILL, a real `piwarden retention sweep` process) loses nothing
and repeats nothing: the next run removes exactly what is left, every person is erased once, and
the batch events add up to the rows removed."""

from __future__ import annotations

import datetime
import signal

import pytest
import time_machine
from django.db.models import Count

from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.people import ledger
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from tests.commands import killed_when, piwarden
from tests.conftest import consultation_data

PEOPLE = 120


@pytest.mark.django_db(transaction=True)
@pytest.mark.duty("RET-02")
def test_a_sweep_killed_mid_way_is_finished_by_the_next_without_loss_or_repeat(client):
    expired_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(
        days=load_declaration().category("consultation").retention_days, hours=1
    )
    with time_machine.travel(expired_at, tick=True):
        for n in range(PEOPLE):
            response = client.post("/consultation/", consultation_data(email=f"p{n}@example.com"))
            assert response.status_code == 302
    assert client.post("/consultation/", consultation_data(email="recent@example.com")).status_code == 302
    old = set(
        Inquiry.objects.filter(submitted_at__lte=expired_at + datetime.timedelta(minutes=5)).values_list(
            "pk", flat=True
        )
    )
    assert len(old) == PEOPLE

    # The logs' rules come first (the requests' security events): killed among the requests' batches.
    batches = AuditEvent.objects.filter(event_type="retention.batch", extra__category="consultation")
    status = killed_when(["retention", "sweep", "--batch-size", "2"], lambda: batches.count() >= 3)
    assert status == -signal.SIGKILL
    left = Inquiry.objects.filter(pk__in=old).count()
    assert 0 < left < PEOPLE, "killed mid-way: some removed, some not"

    finished = piwarden("retention", "sweep", "--batch-size", "7")
    assert finished.returncode == 0, finished.stderr
    assert "%" in finished.stderr  # the progress bar, on stderr

    assert not Inquiry.objects.filter(pk__in=old).exists()
    assert Inquiry.objects.count() == 1  # the recent request is kept
    batches = AuditEvent.objects.filter(event_type="retention.batch", extra__category="consultation")
    assert sum(e.extra["rows"] for e in batches) == PEOPLE  # nothing counted twice, nothing missed
    assert sum(e.extra["persons_erased"] for e in batches) == PEOPLE
    shredded = AuditEvent.objects.filter(event_type="person.shredded")
    assert shredded.count() == PEOPLE
    assert not shredded.values("person_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert Person.objects.filter(erased_at__isnull=False).count() == PEOPLE
    comparison = ledger.compare()
    assert comparison.unerased == []
    assert comparison.unrecorded == []
