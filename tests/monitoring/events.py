"""Write audit events as the site's write paths do (``record_event``, the log's only way in), at
chosen moments (time-machine): the rules read nothing else of an event than its type, actor and time."""

from __future__ import annotations

import datetime

import time_machine
from django.contrib.auth.models import User
from django.db import transaction

from piwarden.audit.log import EventType, record_event

UTC = datetime.UTC
PRC = datetime.timezone(datetime.timedelta(hours=8))


def at_prc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, tzinfo=PRC)


def record(
    event_type: EventType, when: datetime.datetime, *, actor: User | None = None, count: int = 1, every: int = 10
) -> None:
    """``count`` events of a type, ``every`` seconds apart from ``when``, each in its own transaction."""
    for n in range(count):
        with time_machine.travel(when + datetime.timedelta(seconds=n * every), tick=False), transaction.atomic():
            extra = {"failed_step": "password", "known_account": actor is not None}
            record_event(event_type, actor=actor, purpose="security", extra=extra)
