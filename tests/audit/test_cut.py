"""The audit log cut at a signed checkpoint (docs/audit-log-cut.md): the retention sweep deletes
the events past their retention before the newest checkpoint that allows it, and ``verify`` (both
chunked walkers: forked SQLite workers, PostgreSQL's hashing over several connections) checks the
signed cut and what is left; a cut the key did not sign is a break, and the trigger refuses any
DELETE above the greatest cut.

30 events are sealed with checkpoints of 7 (1-7 … 22-28); the first 14 are written 1096 days ago,
so the cut is at 14 and the walk starts at 15, across three chunks and a checkpoint's run."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from piwarden.audit import chain, signing
from piwarden.audit.actions import export_missing
from piwarden.audit.chain import ExportUnreadable, cut_stamp, seal, verify, verify_exported
from piwarden.audit.cut import make_cut
from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditCheckpoint, AuditCut, AuditEvent
from piwarden.people.actions import erase_person, find_or_create_person
from piwarden.people.models import Person
from piwarden.retention import cut as log_cut
from piwarden.retention.actions import place_hold
from piwarden.retention.models import LegalHold
from piwarden.retention.sweep import cut_audit_log, sweep
from tests.audit.conftest import drop_triggers
from tests.audit.test_scan import CHUNK, EVENTS, change_content, every_way, record

pytestmark = pytest.mark.django_db(transaction=True)

OLD = 14  # events written past their retention: the cut is at the checkpoint ending there
PAST = datetime.timedelta(days=1096)


def written(n: int, *, past: bool, person: Person | None = None) -> None:
    when = timezone.now() - PAST if past else timezone.now()
    with time_machine.travel(when, tick=True):
        if person is None:
            record(n)
            return
        for _ in range(n):
            with transaction.atomic():
                record_event(EventType.PII_REVEALED, person=person, purpose="respond_inquiry", fields=["email"])


@pytest.fixture(autouse=True)
def _span(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sealer's checkpoints every ``CHUNK`` events (its short run comes at once for old events)."""
    monkeypatch.setattr(chain, "CHECKPOINT_SPAN", CHUNK)


def runs() -> list[tuple[int, int]]:
    return list(AuditCheckpoint.objects.values_list("first_seq", "last_seq"))


@pytest.fixture
def log() -> dict[int, int]:
    """``EVENTS`` sealed events, the first ``OLD`` of them past their retention, with checkpoints
    of ``CHUNK`` events; seq -> id."""
    written(OLD, past=True)
    written(EVENTS - OLD, past=False)
    assert seal() == EVENTS
    assert runs() == [(1, 7), (8, 14), (15, 21), (22, 28)]
    return dict(AuditEvent.objects.exclude(seq=None).values_list("seq", "id"))


def refused(act: Any) -> None:
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        act()


@pytest.mark.duty("RET-02")
@pytest.mark.duty("SEC-02")
def test_the_sweep_cuts_at_the_newest_checkpoint_past_its_retention_and_verify_walks_from_it(
    log: dict[int, int],
) -> None:
    assert log_cut.next_cut(timezone.now()).checkpoint == (8, 14)
    outcome = cut_audit_log(timezone.now())
    assert (outcome.made, outcome.cut_seq, outcome.deleted, outcome.refused) == (True, OLD, OLD, "")
    assert not AuditEvent.objects.filter(seq__lte=OLD).exists()
    assert AuditEvent.objects.filter(seq__gt=OLD).count() == EVENTS - OLD
    [cut] = AuditCut.objects.all()
    assert (cut.cut_seq, cut.cut_hash) == (OLD, AuditCheckpoint.objects.get(last_seq=OLD).last_hash)
    [event] = AuditEvent.objects.filter(event_type="audit.cut")
    assert event.extra["cut_seq"] == OLD
    assert event.extra["events"] == OLD
    assert event.extra["retention_days"] == 1095
    assert seal() == 1  # the cut's own event, chained after the cut point
    assert every_way() is None  # two workers (forked on SQLite, connections on PostgreSQL), one, one chunk
    # Nothing more is due: a second run makes no cut and deletes nothing.
    again = cut_audit_log(timezone.now())
    assert (again.made, again.deleted) == (False, 0)
    assert AuditEvent.objects.filter(event_type="audit.cut").count() == 1


def test_a_cut_not_finished_verifies_its_events_left_below_it_are_not_read(log: dict[int, int]) -> None:
    make_cut(8)
    AuditEvent.objects.filter(seq__in=[2, 5, 9, 13]).delete()  # a sweep killed after four
    assert every_way() is None
    assert AuditEvent.objects.filter(seq__lte=OLD).count() == OLD - 4


@pytest.mark.duty("SEC-02")
def test_a_cut_the_key_did_not_sign_is_named_as_a_break(log: dict[int, int]) -> None:
    """Someone who can write the database inserts a cut (the trigger then lets them delete what is
    below it): they cannot sign it."""
    run = AuditCheckpoint.objects.get(last_seq=OLD)
    AuditCut.objects.create(
        cut_seq=OLD,
        cut_hash=run.last_hash,
        checkpoint_first_seq=run.first_seq,
        checkpoint_digest=run.digest,
        made_at=timezone.now(),
        signature=AuditCheckpoint.objects.get(last_seq=7).signature,  # a real signature, of something else
    )
    AuditEvent.objects.filter(seq__lte=OLD).delete()  # allowed by the trigger: the cut is there
    broken = every_way()
    assert broken is not None
    assert (broken.event_id, broken.seq) == (log[OLD + 1], OLD + 1)
    assert f"cut at seq {OLD} by a cut that the audit signing key did not sign" in broken.why
    with pytest.raises(Exception, match="did not sign"):
        call_command("audit", "verify", "--quiet")


@pytest.mark.duty("SEC-02")
def test_a_signed_cut_that_names_no_checkpoint_is_a_break(log: dict[int, int]) -> None:
    """A cut signed with the key (say, by someone who stole it) but at a point no checkpoint ends at."""
    made_at = timezone.now().replace(microsecond=0)
    other = AuditEvent.objects.get(seq=OLD - 2).hash
    fields = signing.CutFields(OLD - 2, other, 8, AuditCheckpoint.objects.get(last_seq=OLD).digest, cut_stamp(made_at))
    AuditCut.objects.create(
        cut_seq=OLD - 2,
        cut_hash=other,
        checkpoint_first_seq=8,
        checkpoint_digest=fields.checkpoint_digest,
        made_at=made_at,
        signature=signing.sign_cut(fields),
    )
    broken = every_way()
    assert broken is not None
    assert "no checkpoint ends there" in broken.why


def test_the_trigger_refuses_a_delete_above_the_cut_and_the_cut_itself_never_changes(log: dict[int, int]) -> None:
    refused(lambda: AuditEvent.objects.filter(seq=3).delete())  # no cut yet: nothing is deleted
    cut = make_cut(8)
    assert cut is not None
    refused(lambda: AuditEvent.objects.filter(seq=OLD + 1).delete())
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        refused(lambda: cursor.execute(f"DELETE FROM {table} WHERE seq > %s", [OLD]))  # noqa: S608
    record(1)  # an event not sealed yet (no seq) is never deleted either
    refused(lambda: AuditEvent.objects.filter(seq__isnull=True).delete())
    AuditEvent.objects.filter(seq=OLD).delete()  # at the cut: allowed
    assert AuditEvent.objects.filter(seq__lte=OLD).count() == OLD - 1
    refused(lambda: AuditCut.objects.filter(pk=cut.pk).update(cut_seq=EVENTS))
    refused(lambda: AuditCut.objects.filter(pk=cut.pk).delete())
    assert AuditCut.objects.get().cut_seq == OLD


@pytest.mark.duty("RET-02")
def test_a_legal_hold_on_a_person_keeps_the_cut_before_their_first_event(db: None) -> None:
    written(9, past=True)
    with transaction.atomic():
        person = find_or_create_person(email="later@example.com")
    written(4, past=True, person=person)
    written(EVENTS - 14, past=False)
    seal()
    first = AuditEvent.objects.filter(person=person).order_by("seq").values_list("seq", flat=True).first()
    assert first == 10
    # Their creation event is recent: the sweep runs 1096 days from now, when every event is past.
    place_hold(person=person, reason="Court order 2026-92 (preserve)", ends_on=timezone.now().date() + PAST)
    later = timezone.now() + PAST
    plan = log_cut.next_cut(later)
    assert plan.checkpoint == (1, 7)  # the run 8-14 holds their first event
    assert plan.unheld is not None
    assert plan.unheld > 7
    outcome = cut_audit_log(later)
    assert (outcome.cut_seq, outcome.deleted) == (7, 7)
    assert AuditEvent.objects.filter(person=person, seq__isnull=False).count() == 5
    seal()
    assert every_way() is None


def test_a_hold_on_the_category_keeps_the_whole_log(log: dict[int, int]) -> None:
    place_hold(category="access_records", reason="Regulator inquiry 2026-7", ends_on=timezone.now().date())
    plan = log_cut.next_cut(timezone.now())
    assert (plan.checkpoint, plan.unheld) == (None, OLD)
    assert any("the whole log kept" in h for h in plan.held)
    assert cut_audit_log(timezone.now()).made is False
    out = io.StringIO()
    call_command("retention", "plan", stdout=out)
    text = out.getvalue()
    assert "access_records (1095 days from the event; cut): the audit log is cut at a signed checkpoint" in text
    assert f"without the legal holds, at seq {OLD}" in text
    assert "held back: hold" in text


def test_the_plan_shows_the_next_cut_point(log: dict[int, int]) -> None:
    out = io.StringIO()
    call_command("retention", "plan", stdout=out)
    assert f"next cut at seq {OLD} (checkpoint 8-{OLD}); events due now {OLD}" in out.getvalue()
    cut_audit_log(timezone.now())
    out = io.StringIO()
    call_command("retention", "plan", stdout=out)
    assert f"cut at seq {OLD}; no checkpoint is past its retention yet: no cut due" in out.getvalue()


@pytest.fixture
def exported(settings: Any, tmp_path: Path) -> Path:
    path = tmp_path / "checkpoints.jsonl"
    settings.PIWARDEN_AUDIT_CHECKPOINTS = path
    return path


def test_the_export_file_carries_the_cut_after_its_checkpoint_and_still_verifies(exported: Path) -> None:
    written(OLD, past=True)
    written(EVENTS - OLD, past=False)
    seal()
    cut_audit_log(timezone.now())
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    order = [x.get("cut_seq", x.get("last_seq")) for x in lines]
    assert order == [7, 14, 21, 28, 14]  # the checkpoints, then the cut naming the second
    cut = lines[-1]
    public = signing.Verifier(signing.directory() / signing.PUBLIC_FILE)
    fields = signing.CutFields(
        cut["cut_seq"], cut["cut_hash"], cut["checkpoint_first_seq"], cut["checkpoint_digest"], cut["made_at"]
    )
    assert public.holds_cut(cut["signature"], fields)
    assert cut["cut_hash"] == lines[1]["last_hash"]
    assert verify(chunk=CHUNK, workers=1) is None
    assert verify_exported(exported) is None  # the runs before the cut are not looked for
    out = io.StringIO()
    call_command("audit", "verify", "--quiet", "--checkpoints", str(exported), stdout=out)
    assert "the log is intact" in out.getvalue()
    # A new file gets the checkpoints and the cut again, in seq order.
    exported.unlink()
    assert export_missing(exported) == 5
    assert [json.loads(x).get("cut_seq") for x in exported.read_text().splitlines()] == [None, None, 14, None, None]
    # An edited cut line is refused.
    text = exported.read_text().splitlines()
    text[2] = json.dumps(json.loads(text[2]) | {"cut_seq": 21})
    exported.write_text("\n".join(text) + "\n")
    with pytest.raises(ExportUnreadable, match="line 3: its signature does not verify"):
        verify_exported(exported)


@pytest.mark.duty("RET-02")
def test_an_erased_persons_row_goes_once_the_cut_took_the_last_event_naming_them(db: None) -> None:
    """person_lifecycle: the Person row (timestamps only) of someone erased is deleted once nothing
    links to it; the audit events naming them (person.shredded at least) are the last links."""
    with time_machine.travel(timezone.now() - PAST, tick=True):
        with transaction.atomic():
            gone = find_or_create_person(email="gone@example.com")
            held = find_or_create_person(email="held@example.com")
        assert erase_person(gone, reason="Erased at the person's request (test)")
        assert erase_person(held, reason="Erased at the person's request (test)")
        record(3)
    seal()  # one checkpoint over the old events (its first event is old)
    with transaction.atomic():
        recent = find_or_create_person(email="recent@example.com")
    assert erase_person(recent, reason="Erased at the person's request (test)")
    place_hold(person=held, reason="Court order 2026-93 (preserve)", ends_on=timezone.now().date())
    seal()
    assert Person.objects.get(pk=gone.pk).erased_at is not None
    report = sweep(timezone.now())
    assert report.cut is not None
    assert report.cut.made is False  # the held person's first event is seq 1 (created with the other)
    assert report.cut.held
    assert Person.objects.count() == 3  # every one still named by the log
    lifecycle = next(o for o in report.outcomes if o.category == "person_lifecycle")
    assert lifecycle.rows == 0
    LegalHold.objects.update(lifted_at=timezone.now())  # lifted (the hold row itself still links to them)
    report = sweep(timezone.now())
    assert report.cut is not None
    assert report.cut.made
    assert not AuditEvent.objects.filter(person=gone).exists()
    assert not Person.objects.filter(pk=gone.pk).exists()  # nothing names them any more
    assert Person.objects.filter(pk=held.pk).exists()  # the lifted hold's row still links to them
    assert Person.objects.filter(pk=recent.pk).exists()  # their events are recent
    seal()
    assert verify() is None


@pytest.mark.duty("SEC-02")
def test_a_log_that_does_not_verify_up_to_the_cut_point_is_not_cut(log: dict[int, int]) -> None:
    """The events a cut would delete are evidence: if one was rewritten, nothing is cut or deleted."""
    drop_triggers()
    change_content(log, 3)
    outcome = cut_audit_log(timezone.now())
    assert (outcome.made, outcome.deleted) == (False, 0)
    assert "does not verify up to the cut point" in outcome.refused
    assert f"seq 3 (id {log[3]})" in outcome.refused
    assert not AuditCut.objects.exists()
    assert AuditEvent.objects.filter(seq__lte=OLD).count() == OLD
