"""The monitoring rules, over audit events already read: no query here.

Each rule looks at sealed events (``seq``) of a few types.  A run hands in the events new since
the last run and, for the window rules, those of the window before the first of them (the
look-back), so that a burst split across two runs is still seen; an alert is raised only when
its last event is new, so no event raises the same alert twice.  After an alert, its events are
spent: the next alert of the rule for the same staff member needs the limit exceeded again by
later events (``floors``), and not before a window has passed since the alert's last event, so
that a flood that goes on raises one alert per window, not one per few events.
"""

from __future__ import annotations

import datetime
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings

from piwarden.audit.models import EventType
from piwarden.monitoring.models import Rule
from piwarden.rights.clock import PRC_TIME, WorkingCalendar

REVEALS = frozenset({EventType.PII_REVEALED.value})
SIGN_IN_FAILURES = frozenset({EventType.STAFF_SIGN_IN_FAILED.value})
# A staff reveal refused by the gate keeps its own type (processing.gate.Use.refused_event).
REFUSALS = frozenset({EventType.PROCESSING_REFUSED.value, EventType.PII_REVEAL_REFUSED.value})
WATCHED = REVEALS | SIGN_IN_FAILURES | REFUSALS


@dataclass(frozen=True, slots=True)
class Seen:
    """What a rule reads of an event: no field, purpose, reason or person."""

    seq: int
    at: datetime.datetime
    event_type: str
    actor_id: int | None


@dataclass(frozen=True)
class Limit:
    """More than ``most`` events within ``minutes`` raise an alert."""

    most: int
    minutes: int

    @property
    def window(self) -> datetime.timedelta:
        return datetime.timedelta(minutes=self.minutes)


@dataclass(frozen=True)
class Thresholds:
    reveals: Limit
    sign_in_failures: Limit
    sign_in_failures_all: Limit
    refusals: Limit
    working_hours: tuple[datetime.time, datetime.time]

    @classmethod
    def from_settings(cls) -> Thresholds:
        sign_in_minutes = settings.PIWARDEN_ALERT_SIGN_IN_MINUTES
        return cls(
            reveals=Limit(settings.PIWARDEN_ALERT_REVEALS, settings.PIWARDEN_ALERT_REVEALS_MINUTES),
            sign_in_failures=Limit(settings.PIWARDEN_ALERT_SIGN_IN_FAILURES, sign_in_minutes),
            sign_in_failures_all=Limit(settings.PIWARDEN_ALERT_SIGN_IN_FAILURES_ALL, sign_in_minutes),
            refusals=Limit(settings.PIWARDEN_ALERT_REFUSALS, settings.PIWARDEN_ALERT_REFUSALS_MINUTES),
            working_hours=settings.PIWARDEN_ALERT_WORKING_HOURS,
        )

    def longest_window(self) -> datetime.timedelta:
        limits = (self.reveals, self.sign_in_failures, self.sign_in_failures_all, self.refusals)
        return max(limit.window for limit in limits)


@dataclass(frozen=True)
class Finding:
    rule: Rule
    staff_id: int | None
    first: Seen
    last: Seen
    events: int
    limit: Limit


# (rule, staff) → the last event (seq, time) counted into an alert of that rule for that staff member
Floors = Mapping[tuple[Rule, int | None], tuple[int, datetime.datetime]]


def bursts(
    rule: Rule,
    events: Iterable[Seen],
    limit: Limit,
    *,
    after: int,
    floors: Floors,
    key: Callable[[Seen], int | None],
) -> list[Finding]:
    """More than ``limit.most`` events of one key within ``limit.minutes``, ending in an event
    later than ``after`` (the last one examined before this run)."""
    windows: dict[int | None, deque[Seen]] = defaultdict(deque)
    last_alert = {who: floor for (of, who), floor in floors.items() if of == rule}
    found: list[Finding] = []
    for event in events:
        who = key(event)
        spent_seq, spent_at = last_alert.get(who, (0, None))
        if event.seq <= spent_seq:
            continue
        window = windows[who]
        window.append(event)
        while window and window[0].at <= event.at - limit.window:
            window.popleft()
        quiet = spent_at is None or event.at >= spent_at + limit.window
        if len(window) > limit.most and event.seq > after and quiet:
            found.append(Finding(rule, who, window[0], event, len(window), limit))
            window.clear()  # spent: the next alert needs the limit exceeded again
            last_alert[who] = (event.seq, event.at)
    return found


def outside_hours(at: datetime.datetime, calendar: WorkingCalendar, hours: tuple[datetime.time, datetime.time]) -> bool:
    """Whether a moment falls outside PRC working hours: a day off (weekends, official holidays,
    but not make-up workdays), or before or after the working hours of a working day."""
    local = at.astimezone(PRC_TIME)
    start, end = hours
    return not calendar.is_working_day(local.date()) or not start <= local.time() < end


def off_hours(
    events: Iterable[Seen],
    thresholds: Thresholds,
    calendar: WorkingCalendar,
    *,
    after: int,
    alerted_days: set[tuple[int | None, datetime.date]],
) -> list[Finding]:
    """One alert per staff member and PRC day with reveals outside working hours; a day already
    alerted (``alerted_days``) raises no second one (its later reveals are in the audit log)."""
    groups: dict[tuple[int | None, datetime.date], list[Seen]] = defaultdict(list)
    for event in events:
        if event.seq <= after or event.event_type not in REVEALS:
            continue
        if outside_hours(event.at, calendar, thresholds.working_hours):
            day = (event.actor_id, event.at.astimezone(PRC_TIME).date())
            if day not in alerted_days:
                groups[day].append(event)
    limit = Limit(0, 0)
    return [
        Finding(Rule.OFF_HOURS_REVEALS, who, seen[0], seen[-1], len(seen), limit) for (who, _), seen in groups.items()
    ]


def evaluate(
    events: list[Seen],
    thresholds: Thresholds,
    calendar: WorkingCalendar,
    *,
    after: int,
    floors: Floors,
    alerted_days: set[tuple[int | None, datetime.date]],
) -> list[Finding]:
    """Every rule over ``events`` (look-back and new, by seq)."""
    reveals = [e for e in events if e.event_type in REVEALS]
    failures = [e for e in events if e.event_type in SIGN_IN_FAILURES]
    refusals = [e for e in events if e.event_type in REFUSALS]
    by_actor: Callable[[Seen], int | None] = lambda e: e.actor_id  # noqa: E731
    everyone: Callable[[Seen], int | None] = lambda e: None  # noqa: E731
    return [
        *bursts(Rule.BULK_REVEALS, reveals, thresholds.reveals, after=after, floors=floors, key=by_actor),
        *off_hours(reveals, thresholds, calendar, after=after, alerted_days=alerted_days),
        *bursts(
            Rule.SIGN_IN_FAILURES,
            [e for e in failures if e.actor_id is not None],  # a name that is no staff account's has no actor
            thresholds.sign_in_failures,
            after=after,
            floors=floors,
            key=by_actor,
        ),
        *bursts(
            Rule.SIGN_IN_FAILURES_ALL,
            failures,
            thresholds.sign_in_failures_all,
            after=after,
            floors=floors,
            key=everyone,
        ),
        *bursts(Rule.REFUSAL_BURST, refusals, thresholds.refusals, after=after, floors=floors, key=everyone),
    ]
