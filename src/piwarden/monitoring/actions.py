"""Write paths of the monitoring: a run of the rules, and an auditor's acknowledgement.

A run reads sealed audit events only: ``seq`` is given in commit order by the one sealer, so a
cursor on it never skips an event that a slower transaction committed late (``id`` could).  It
seals what is pending first, so that a run from the command line sees every committed event.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop

from piwarden.audit.chain import seal
from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.audit.models import AuditEvent
from piwarden.monitoring.access import refuse_unless_monitor
from piwarden.monitoring.models import NOTE_MAX_LENGTH, Alert, MonitorCursor, Rule
from piwarden.monitoring.rules import WATCHED, Finding, Seen, Thresholds, evaluate
from piwarden.monitoring.tasks import send_alert_mail
from piwarden.rights.clock import PRC_TIME, load_calendar
from piwarden.staff.access import actor_of

# Sealed events read per transaction: the run holds the cursor's lock (and on SQLite, whose
# transactions are IMMEDIATE, the write lock) for one chunk at a time, ~0.1 s for 10,000 events
# here (bench/monitor.py), so that a first run over a long log does not stall the requests' writes.
CHUNK = 10_000


@dataclass(frozen=True)
class Run:
    examined: int  # sealed events passed over (of every type)
    alerts: tuple[int, ...]  # ids of the alerts raised


def run_monitor(thresholds: Thresholds | None = None) -> Run:
    """Examine the events sealed since the last run, raise the alerts they call for (each e-mailed
    to the security role once, through the task queue), and move the cursor past them.
    Idempotent: a second run with nothing new examines nothing and raises nothing."""
    thresholds = thresholds or Thresholds.from_settings()
    seal()
    examined, raised = 0, list[int]()
    while True:
        chunk = _run_chunk(thresholds)
        examined += chunk.examined
        raised += chunk.alerts
        if chunk.examined < CHUNK:
            return Run(examined, tuple(raised))


@transaction.atomic(durable=True)
def _run_chunk(thresholds: Thresholds) -> Run:
    MonitorCursor.objects.get_or_create(pk=1)
    cursor = MonitorCursor.objects.select_for_update().get(pk=1)
    after = cursor.last_seq
    top = AuditEvent.objects.filter(seq__gt=after).aggregate(top=Max("seq"))["top"]
    if top is None:
        return Run(0, ())
    upto = min(top, after + CHUNK)
    new = _seen(AuditEvent.objects.filter(seq__gt=after, seq__lte=upto))
    lookback: list[Seen] = []
    if new:
        since = min(e.at for e in new) - thresholds.longest_window()
        lookback = _seen(AuditEvent.objects.filter(seq__lte=after, occurred_at__gt=since))
    findings = evaluate(
        lookback + new,
        thresholds,
        load_calendar(),
        after=after,
        floors=_floors(),
        alerted_days=_alerted_days(new),
    )
    alerts = [_raise(finding) for finding in findings]
    cursor.last_seq = upto
    cursor.examined_at = timezone.now()
    cursor.save(update_fields=["last_seq", "examined_at"])
    return Run(upto - after, tuple(a.pk for a in alerts))


def _seen(events: QuerySet[AuditEvent]) -> list[Seen]:
    rows = (
        events.filter(event_type__in=WATCHED)
        .order_by("seq")
        .values_list("seq", "occurred_at", "event_type", "actor_id")
    )
    # Sealed events only (the callers select by seq), so seq is never None here.
    return [Seen(seq or 0, at, kind, actor) for seq, at, kind, actor in rows]


def _floors() -> dict[tuple[Rule, int | None], tuple[int, datetime.datetime]]:
    rows = Alert.objects.order_by().values_list("rule", "staff_id").annotate(top=Max("last_seq"), at=Max("last_at"))
    return {(Rule(rule), staff): (top, at) for rule, staff, top, at in rows}


def _alerted_days(new: list[Seen]) -> set[tuple[int | None, datetime.date]]:
    """The (staff member, PRC day) pairs that already have an out-of-hours alert, for the days of ``new``."""
    if not new:
        return set()
    since = min(e.at for e in new) - datetime.timedelta(days=1)
    rows = Alert.objects.filter(rule=Rule.OFF_HOURS_REVEALS, first_at__gte=since).values_list("staff_id", "first_at")
    return {(staff, at.astimezone(PRC_TIME).date()) for staff, at in rows}


def _raise(finding: Finding) -> Alert:
    alert = Alert.objects.create(
        rule=finding.rule,
        staff_id=finding.staff_id,
        events=finding.events,
        threshold=finding.limit.most,
        window_minutes=finding.limit.minutes,
        first_seq=finding.first.seq,
        last_seq=finding.last.seq,
        first_at=finding.first.at,
        last_at=finding.last.at,
        raised_at=timezone.now(),
    )
    record_event(
        EventType.ALERT_RAISED,
        actor_kind=ActorKind.SYSTEM,
        extra={
            "alert": alert.pk,
            "rule": str(finding.rule),
            "staff": finding.staff_id,
            "events": finding.events,
            "first_seq": finding.first.seq,
            "last_seq": finding.last.seq,
        },
    )
    send_alert_mail.enqueue(str(alert.pk))  # the task's row commits with the alert (the outbox)
    return alert


def raise_clock_alert(
    rule: Rule,
    *,
    seq: int,
    first_at: datetime.datetime,
    last_at: datetime.datetime,
    bound: datetime.timedelta = datetime.timedelta(0),
    extra: dict[str, Any] | None = None,
) -> Alert:
    """An alert about a clock, raised in the caller's transaction: a deadline kept outside the audit
    log runs out (the incident register's regulator clock), or the clock jumped ahead of the last
    reading the retention sweep trusted.  It stands on one audit event (``seq``: one alert per rule
    and event, which the caller checks), spans ``first_at`` to ``last_at`` (the detection and the
    deadline; the trusted reading and the clock's), with ``bound`` the span the clock may not exceed
    (none for a deadline) and ``extra`` added to its ``alert.raised`` event; it is e-mailed to the
    security role once, as every alert is."""
    hours = int(bound.total_seconds() // 3600)
    alert = Alert.objects.create(
        rule=rule,
        staff=None,
        events=1,
        threshold=hours,
        window_minutes=hours * 60,
        first_seq=seq,
        last_seq=seq,
        first_at=first_at,
        last_at=last_at,
        raised_at=timezone.now(),
    )
    record_event(
        EventType.ALERT_RAISED,
        actor_kind=ActorKind.SYSTEM,
        extra={
            "alert": alert.pk,
            "rule": str(rule),
            "staff": None,
            "events": 1,
            "first_seq": seq,
            "last_seq": seq,
            **(extra or {}),
        },
    )
    send_alert_mail.enqueue(str(alert.pk))
    return alert


class AcknowledgeRefused(Exception):
    """Already acknowledged, or the note is too long."""


def acknowledge_alert(user: AbstractBaseUser | AnonymousUser, alert_id: int, *, note: str) -> Alert:
    """The security auditor marks an alert as looked into, with a note; recorded in the audit log.
    Another role is refused (recorded on its own, before anything is read) with a 404."""
    refuse_unless_monitor(user, "alert acknowledgement")
    return _acknowledge(user, alert_id, note=note)


@transaction.atomic(durable=True)
def _acknowledge(user: AbstractBaseUser | AnonymousUser, alert_id: int, *, note: str) -> Alert:
    note = note.strip()
    if not note or len(note) > NOTE_MAX_LENGTH:
        raise AcknowledgeRefused(gettext_noop("a note of 1 to 500 characters is needed"))
    alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise AcknowledgeRefused(gettext_noop("no such alert"))
    if alert.acknowledged_at is not None:
        raise AcknowledgeRefused(gettext_noop("the alert was acknowledged already"))
    alert.acknowledged_at = timezone.now()
    alert.acknowledged_by = actor_of(user)
    alert.note = note
    alert.save(update_fields=["acknowledged_at", "acknowledged_by", "note"])
    record_event(
        EventType.ALERT_ACKNOWLEDGED,
        actor=actor_of(user),
        reason=note,
        extra={"alert": alert.pk, "rule": alert.rule, "staff": alert.staff_id},
    )
    return alert
