"""A cut of the audit log killed in the middle (SIGKILL of a real `piwarden retention sweep`) is
finished by the next run: every event at or below the cut deleted, one `audit.cut` event, no second
cut, and `piwarden audit verify` passes on what is left."""

from __future__ import annotations

import datetime
import signal

import pytest
import time_machine
from django.utils import timezone

from piwarden.audit.chain import seal, verify
from piwarden.audit.models import AuditCheckpoint, AuditCut, AuditEvent
from tests.audit.test_scan import record
from tests.commands import killed_when, piwarden

OLD = 600  # events past their retention, checkpointed as one run (its first event is old)


@pytest.mark.django_db(transaction=True)
@pytest.mark.duty("RET-02")
def test_a_cut_killed_mid_way_is_finished_by_the_next_sweep_with_one_cut_event() -> None:
    with time_machine.travel(timezone.now() - datetime.timedelta(days=1096), tick=True):
        record(OLD)
    assert seal() == OLD
    assert list(AuditCheckpoint.objects.values_list("first_seq", "last_seq")) == [(1, OLD)]
    record(3)  # recent: kept, and the clock the sweep trusts
    seal()

    below = AuditEvent.objects.filter(seq__lte=OLD)
    status = killed_when(
        ["retention", "sweep", "--batch-size", "1"],
        lambda: AuditCut.objects.exists() and below.count() <= OLD - 20,
    )
    assert status == -signal.SIGKILL
    left = below.count()
    assert 0 < left < OLD, "killed mid-way: some deleted, some not"
    assert verify() is None  # a cut not finished verifies: what is left below it is not read

    finished = piwarden("retention", "sweep")
    assert finished.returncode == 0, finished.stderr
    assert f"access_records, access_reasons (audit log): {left} event(s) deleted; cut at seq {OLD}" in finished.stdout
    assert not below.exists()
    assert AuditEvent.objects.filter(seq__gt=OLD).count() == 3
    assert AuditCut.objects.count() == 1
    assert AuditEvent.objects.filter(event_type="audit.cut").count() == 1
    seal()
    checked = piwarden("audit", "verify", "--quiet")
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "the log is intact" in checked.stdout
