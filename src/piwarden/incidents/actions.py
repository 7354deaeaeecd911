"""Write paths of the incident register (policy §五.6; SEC-04, SEC-05, SEC-06, CHD-06).

Each step of an incident is one function here: it checks that the staff member keeps the
register (``handle_incidents``), opens a durable transaction, locks the incident, checks the
step against the state machine (:mod:`piwarden.incidents.models`), changes the incident with
``update_fields``, writes its audit event, and queues its side effects with the transaction (the
notices' task row, the monitoring's alert and its e-mail).  A step that does not fit is refused
with :class:`IncidentRefused`, whose message (an English msgid, translated by the page) says what
to do; the refusal is recorded on its own, so a rollback cannot take the record back.

The rules, in one place:

* the emergency plan is activated before any other step (SEC-04): every step but recording and
  activating refuses an incident still ``detected``;
* the report to the regulator may be filed as soon as the plan is activated, before the incident
  is contained: the clock (4 hours, 1 hour where critical information infrastructure is involved,
  for grades of 较大 and above, SEC-06) does not wait for containment;
* notifying, or deciding not to, needs the incident contained, the report filed where one is due,
  and the notice's texts; deciding not to notify needs a justification, and is refused when the
  authority requires the notice (PIPL 57 para 2);
* closing needs the incident contained, reported where due, and notified or justified;
* a closed incident changes no more.

Notices: :func:`notify_persons` creates one :class:`~piwarden.incidents.models.Notice` per person
(and one per minor's guardians), never a second (a unique constraint), and queues one task that
sends every notice not yet sent (:mod:`piwarden.incidents.mail`); pressing *send* again, adding a
list later or the worker re-running after a crash sends nobody twice.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from piwarden.audit.chain import seal
from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.audit.models import AuditEvent
from piwarden.incidents.access import refuse_unless_handler
from piwarden.incidents.models import (
    REPORTABLE,
    Incident,
    Notice,
    Recipient,
    State,
    report_deadline,
)
from piwarden.incidents.tasks import deliver_notices
from piwarden.monitoring.actions import raise_clock_alert
from piwarden.monitoring.models import Rule
from piwarden.people import contacts, guardians
from piwarden.people.models import Person
from piwarden.staff.access import actor_of
from piwarden.vault import blind

User = AbstractBaseUser | AnonymousUser


class IncidentRefused(Exception):
    """A step that does not fit the incident's state, or input the rules refuse: the message says what to do."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


PLAN_FIRST = gettext_noop("Activate the emergency plan first: no other step comes before it.")
CLOSED = gettext_noop("The incident is closed: it changes no more.")


@dataclass(frozen=True)
class Details:
    """What the register records about an incident (forms.IncidentForm's cleaned data)."""

    title: str
    kind: str
    grade: str
    cii: bool
    detected_at: datetime.datetime
    categories: tuple[str, ...]
    affected_persons: int
    minors_affected: int
    cause: str
    measures: str

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Details:
        return cls(
            title=data["title"].strip(),
            kind=data["kind"],
            grade=data["grade"],
            cii=bool(data.get("cii")),
            detected_at=data["detected_at"],
            categories=tuple(data.get("categories") or ()),
            affected_persons=data["affected_persons"],
            minors_affected=data["minors_affected"],
            cause=data["cause"].strip(),
            measures=(data.get("measures") or "").strip(),
        )

    def fields(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "kind": self.kind,
            "grade": self.grade,
            "cii": self.cii,
            "detected_at": self.detected_at,
            "categories": list(self.categories),
            "affected_persons": self.affected_persons,
            "minors_affected": self.minors_affected,
            "cause": self.cause,
            "measures": self.measures,
        }


def _summary(incident: Incident) -> dict[str, Any]:
    """What an audit event says about the incident: its slug, grade and counts, never its free text."""
    return {
        "incident": incident.slug,
        "grade": incident.grade,
        "kind": incident.kind,
        "cii": incident.cii,
        "categories": list(incident.categories),
        "affected_persons": incident.affected_persons,
        "minors_affected": incident.minors_affected,
        "report_due_at": incident.report_due_at.isoformat() if incident.report_due_at else None,
    }


def _state_of(incident: Incident) -> State:
    """The furthest step reached, in the machine's order (the report may precede containment)."""
    if incident.closed_at is not None:
        return State.CLOSED
    if incident.notified_at is not None:
        return State.NOTIFIED
    if incident.contained_at is not None and incident.reported_at is not None:
        return State.REPORTED
    if incident.contained_at is not None:
        return State.CONTAINED
    if incident.plan_activated_at is not None:
        return State.PLAN_ACTIVATED
    return State.DETECTED


def _refused(user: User, slug: str, step: str, message: str, **params: Any) -> IncidentRefused:
    with transaction.atomic(durable=True):
        record_event(
            EventType.INCIDENT_ACTION_REFUSED,
            actor=actor_of(user),
            extra={"incident": slug, "step": step, "refusal": message % params if params else message},
        )
    return IncidentRefused(message, **params)


def _locked(slug: str) -> Incident | None:
    return Incident.objects.select_for_update().filter(slug=slug).first()


def _step(user: User, slug: str, step: str, change: Callable[[Incident], Any]) -> Incident:
    """Run ``change`` on the locked incident in a durable transaction; a refusal it raises (a
    ``_Refuse``) is recorded after the rollback and raised as :class:`IncidentRefused`."""
    refuse_unless_handler(user, step, about=slug)
    try:
        with transaction.atomic(durable=True):
            incident = _locked(slug)
            if incident is None:
                raise _Refuse(gettext_noop("No such incident."))
            change(incident)
            return incident
    except _Refuse as refusal:
        raise _refused(user, slug, step, refusal.message, **refusal.params) from None


class _Refuse(Exception):
    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


def _save(incident: Incident, *fields: str) -> None:
    incident.state = _state_of(incident)
    incident.save(update_fields=[*fields, "state"])


def _open(incident: Incident) -> None:
    if incident.closed_at is not None:
        raise _Refuse(CLOSED)


def _planned(incident: Incident) -> None:
    _open(incident)
    if incident.plan_activated_at is None:
        raise _Refuse(PLAN_FIRST)


# --- recording ---------------------------------------------------------------------------------


def record_incident(user: User, details: Details) -> Incident:
    """Record a new incident, ``detected``; a grade of 较大 and above sets the report deadline."""
    refuse_unless_handler(user, "record incident")
    with transaction.atomic(durable=True):
        now = timezone.now()
        incident = Incident(recorded_at=now, state=State.DETECTED, **details.fields())
        incident.report_due_at = report_deadline(incident.grade, incident.detected_at, cii=incident.cii)
        incident.save(force_insert=True)
        record_event(EventType.INCIDENT_RECORDED, actor=actor_of(user), extra=_summary(incident))
    return incident


def update_incident(user: User, slug: str, details: Details) -> Incident:
    """Correct an incident's details (a grade raised, more persons found); the deadline follows the
    grade, the detection time and the CII flag until the report is filed."""

    def change(incident: Incident) -> None:
        _open(incident)
        for name, value in details.fields().items():
            setattr(incident, name, value)
        if incident.reported_at is None:
            incident.report_due_at = report_deadline(incident.grade, incident.detected_at, cii=incident.cii)
        _save(incident, *details.fields(), "report_due_at")
        record_event(EventType.INCIDENT_UPDATED, actor=actor_of(user), extra=_summary(incident))

    return _step(user, slug, "update", change)


# --- the state machine -------------------------------------------------------------------------


def activate_plan(user: User, slug: str) -> Incident:
    """SEC-04: the emergency plan started, the first step after detection."""

    def change(incident: Incident) -> None:
        _open(incident)
        if incident.plan_activated_at is not None:
            raise _Refuse(gettext_noop("The emergency plan is activated already."))
        incident.plan_activated_at = timezone.now()
        _save(incident, "plan_activated_at")
        record_event(EventType.INCIDENT_PLAN_ACTIVATED, actor=actor_of(user), extra=_summary(incident))

    return _step(user, slug, "activate plan", change)


def contain_incident(user: User, slug: str) -> Incident:
    def change(incident: Incident) -> None:
        _planned(incident)
        if incident.contained_at is not None:
            raise _Refuse(gettext_noop("The incident is contained already."))
        incident.contained_at = timezone.now()
        _save(incident, "contained_at")
        record_event(EventType.INCIDENT_CONTAINED, actor=actor_of(user), extra=_summary(incident))

    return _step(user, slug, "contain", change)


def report_incident(user: User, slug: str, report: Mapping[str, str], *, authority_requires_notice: bool) -> Incident:
    """File the report to the regulator (SEC-06), as the register keeps it; stops the clock."""

    def change(incident: Incident) -> None:
        _planned(incident)
        if incident.reported_at is not None:
            raise _Refuse(gettext_noop("The report is filed already."))
        now = timezone.now()
        incident.reported_at = now
        incident.report = {key: value.strip() for key, value in report.items()}
        incident.authority_requires_notice = authority_requires_notice
        _save(incident, "reported_at", "report", "authority_requires_notice")
        due = incident.report_due_at
        record_event(
            EventType.INCIDENT_REPORTED,
            actor=actor_of(user),
            extra={
                **_summary(incident),
                "authority": incident.report.get("authority", ""),
                "late": due is not None and now > due,
                "authority_requires_notice": authority_requires_notice,
            },
        )

    return _step(user, slug, "report", change)


def save_notice(user: User, slug: str, texts: Mapping[str, Mapping[str, str]]) -> Incident:
    """Save the notice's texts (cause, harm, remedies, advice; each in Chinese and English)."""

    def change(incident: Incident) -> None:
        _planned(incident)
        incident.notice = {part: dict(by_language) for part, by_language in texts.items()}
        _save(incident, "notice")
        record_event(EventType.INCIDENT_NOTICE_SAVED, actor=actor_of(user), extra={"incident": incident.slug})

    return _step(user, slug, "save notice", change)


def _ready_to_notify(incident: Incident) -> None:
    _planned(incident)
    if incident.contained_at is None:
        raise _Refuse(gettext_noop("Contain the incident first: the notice tells people the measures taken."))
    if incident.grade in REPORTABLE and incident.reported_at is None:
        raise _Refuse(gettext_noop("File the report to the regulator first: this grade must be reported."))


@dataclass(frozen=True)
class Queued:
    persons: int  # persons chosen (categories and list)
    new: int  # notices created now (the others existed: nobody is notified twice)
    guardians: int  # notices to the guardians of minors created now
    guardians_unreachable: bool  # minors are affected and no source of guardians' addresses exists


def notify_persons(user: User, slug: str, *, by_categories: bool, addresses: list[str]) -> Queued:
    """Queue the notice to every person chosen (by the affected categories and/or a list of
    addresses of persons we hold data about), once each, and to the guardians of minors."""
    refuse_unless_handler(user, "notify", about=slug)
    listed: set[uuid.UUID] = set()
    if addresses:
        indexes = {blind.email_index(a): n for n, a in enumerate(addresses, start=1)}
        found = dict(Person.objects.filter(email_index__in=list(indexes)).values_list("email_index", "id"))
        unknown = sorted(n for index, n in indexes.items() if index not in found)
        if unknown:
            raise _refused(
                user,
                slug,
                "notify",
                gettext_noop("No person we hold data about has the address on line(s) %(lines)s: nothing was queued."),
                lines=", ".join(map(str, unknown[:20])),
            )
        listed = set(found.values())

    queued: list[Queued] = []

    def change(incident: Incident) -> None:
        _ready_to_notify(incident)
        if not incident.notice:
            raise _Refuse(gettext_noop("Write the notice's texts first."))
        chosen = listed | (contacts.holding(incident.categories) if by_categories else set())
        if not chosen:
            raise _Refuse(
                gettext_noop(
                    "Nobody to notify: no person's data of the affected categories is held. List addresses, "
                    "publish the public notice, or record why the persons are not notified."
                )
            )
        now = timezone.now()
        source = guardians.source()
        minors = source.minors(chosen) if source is not None else set()  # what the data says, not the count
        before = Notice.objects.filter(incident=incident).count()
        rows = [Notice(incident=incident, person_id=p, recipient=Recipient.PERSON, queued_at=now) for p in chosen]
        rows += [Notice(incident=incident, person_id=p, recipient=Recipient.GUARDIAN, queued_at=now) for p in minors]
        Notice.objects.bulk_create(rows, ignore_conflicts=True)
        created = Notice.objects.filter(incident=incident).count() - before
        new_guardians = Notice.objects.filter(incident=incident, recipient=Recipient.GUARDIAN, queued_at=now).count()
        unreachable = incident.minors_affected > 0 and source is None
        if incident.notified_at is None:
            incident.notified_at = now
            _save(incident, "notified_at")
        record_event(
            EventType.INCIDENT_NOTICES_QUEUED,
            actor=actor_of(user),
            extra={
                "incident": incident.slug,
                "persons": len(chosen),
                "by_categories": by_categories,
                "listed": len(listed),
                "new": created,
                "guardians": new_guardians,
                "guardians_unreachable": unreachable,
            },
        )
        deliver_notices.enqueue(str(incident.pk))  # its row commits with the notices (the outbox)
        queued.append(Queued(len(chosen), created, new_guardians, unreachable))

    _step(user, slug, "notify", change)
    return queued[0]


def decline_notice(user: User, slug: str, justification: str) -> Incident:
    """Decide not to notify the persons affected (PIPL 57 para 2), with the justification recorded."""

    def change(incident: Incident) -> None:
        _ready_to_notify(incident)
        if incident.authority_requires_notice:
            raise _Refuse(
                gettext_noop("The authority requires the persons to be notified: the notice cannot be declined.")
            )
        if incident.notified_at is not None:
            raise _Refuse(gettext_noop("The notification is decided already."))
        incident.notified_at = timezone.now()
        incident.no_notice_reason = justification.strip()
        _save(incident, "notified_at", "no_notice_reason")
        record_event(
            EventType.INCIDENT_NOT_NOTIFYING,
            actor=actor_of(user),
            reason=incident.no_notice_reason[:500],
            extra={"incident": incident.slug},
        )

    return _step(user, slug, "decline notice", change)


def publish_notice(user: User, slug: str) -> Incident:
    """Publish the notice at /incidents/<slug>/ (zh, en): where the persons cannot be reached one by one."""

    def change(incident: Incident) -> None:
        _planned(incident)
        if not incident.notice:
            raise _Refuse(gettext_noop("Write the notice's texts first."))
        if incident.published_at is not None:
            raise _Refuse(gettext_noop("The public notice is published already."))
        incident.published_at = timezone.now()
        _save(incident, "published_at")
        record_event(EventType.INCIDENT_PUBLISHED, actor=actor_of(user), extra={"incident": incident.slug})

    return _step(user, slug, "publish", change)


def close_incident(user: User, slug: str) -> Incident:
    def change(incident: Incident) -> None:
        _planned(incident)
        if incident.contained_at is None:
            raise _Refuse(gettext_noop("Contain the incident before closing it."))
        if incident.grade in REPORTABLE and incident.reported_at is None:
            raise _Refuse(gettext_noop("File the report to the regulator before closing: this grade must be reported."))
        if incident.notified_at is None:
            raise _Refuse(
                gettext_noop("Notify the persons affected, or record why they are not notified, before closing.")
            )
        incident.closed_at = timezone.now()
        _save(incident, "closed_at")
        pending = Notice.objects.filter(incident=incident, outcome="").count()
        record_event(
            EventType.INCIDENT_CLOSED, actor=actor_of(user), extra={**_summary(incident), "notices_pending": pending}
        )

    return _step(user, slug, "close", change)


# --- the regulator's clock ---------------------------------------------------------------------


def alert_report_deadlines() -> list[int]:
    """Alert the security role (the monitoring's alerts and their e-mail) when an incident's report
    to the regulator is due within the last quarter of its window (1 hour of 4, 15 minutes of 1)
    and again when it is overdue: each once.  Idempotent: run it as often as you like."""
    now = timezone.now()
    waiting = Incident.objects.filter(report_due_at__isnull=False, reported_at__isnull=True, closed_at__isnull=True)
    raised: list[int] = []
    sealed = False
    for incident in waiting.only("id", "slug", "detected_at", "report_due_at", "due_alerted_at", "overdue_alerted_at"):
        due = incident.report_due_at
        assert due is not None  # noqa: S101  # filtered above
        if now >= due and incident.overdue_alerted_at is None:
            rule = Rule.INCIDENT_REPORT_OVERDUE
        elif now >= due - (due - incident.detected_at) / 4 and incident.due_alerted_at is None and now < due:
            rule = Rule.INCIDENT_REPORT_DUE
        else:
            continue
        if not sealed:
            seal()  # the alert names the incident's recorded event by its sequence number
            sealed = True
        alert = _alert(incident.pk, rule, now)
        if alert is not None:
            raised.append(alert)
    return raised


@transaction.atomic(durable=True)
def _alert(incident_id: int, rule: Rule, now: datetime.datetime) -> int | None:
    incident = Incident.objects.select_for_update().get(pk=incident_id)
    flag = "overdue_alerted_at" if rule is Rule.INCIDENT_REPORT_OVERDUE else "due_alerted_at"
    if getattr(incident, flag) is not None or incident.reported_at is not None or incident.report_due_at is None:
        return None  # another run raised it, or the report was filed meanwhile
    recorded = (
        AuditEvent.objects.filter(event_type=EventType.INCIDENT_RECORDED, extra__incident=incident.slug)
        .exclude(seq=None)
        .values_list("seq", flat=True)
        .first()
    )
    if recorded is None:
        return None  # not sealed yet: the next run raises it
    setattr(incident, flag, now)
    if rule is Rule.INCIDENT_REPORT_OVERDUE and incident.due_alerted_at is None:
        incident.due_alerted_at = now  # one alert says both
    incident.save(update_fields=["due_alerted_at", "overdue_alerted_at"])
    alert = raise_clock_alert(rule, seq=recorded, first_at=incident.detected_at, last_at=incident.report_due_at).pk
    minutes_left = int((incident.report_due_at - now).total_seconds() // 60)
    record_event(
        EventType.INCIDENT_DEADLINE_ALERT,
        actor_kind=ActorKind.SYSTEM,
        extra={"incident": incident.slug, "alert": alert, "rule": str(rule), "minutes_left": minutes_left},
    )
    return alert
