"""Where the cessation stands, as every page and every form asks it.

``accepting_new_data()`` is the one question a collecting form asks before it stores anything
(the consultation form; the sign-up of the coming accounts app): False from the announcement on.
``rights_open()``: the rights portal keeps taking requests until the day before the date, so that
everyone can still get a copy of their data or have it deleted first (PIPL 45, 47); from the date
there is nothing left to ask about.

Pages show the notice on every render (the context processor) and the stored pages of
:mod:`piwarden.site.pagecache` key on :func:`page_key`.  Those reads are served from a per-process
copy for :data:`FRESH_FOR` seconds (a page is rendered in every worker process, and one query
per page view is what the stored pages exist to avoid); an announcement shows in every process
within that time, and at once in the process that made it.  The form's question before storing
reads the database each time.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

from django.db import DatabaseError
from django.utils import timezone

from piwarden.cessation.models import Cessation
from piwarden.prepared import PreparedSelect

FRESH_FOR = 5.0  # seconds a process reuses what it read


@dataclass(frozen=True)
class Standing:
    """The live cessation, if any: its date, and whether it has been carried out."""

    ceases_on: datetime.date | None = None
    executed: bool = False

    @property
    def announced(self) -> bool:
        return self.ceases_on is not None

    def due(self, today: datetime.date | None = None) -> bool:
        """Whether the date has come (the PRC calendar day, settings.TIME_ZONE)."""
        return self.ceases_on is not None and (today or timezone.localdate()) >= self.ceases_on


_NONE = Standing()
_cached: tuple[float, Standing] | None = None


# Compiled once per connection: every consultation POST asks it fresh, and building the queryset
# cost ten times the read itself (~140 µs against ~15 µs).
_LIVE = PreparedSelect(
    lambda: Cessation.objects.filter(live=True).values_list("ceases_on", "executed_at")[:1], streamed=False
)


def read() -> Standing:
    """The standing as the database has it now."""
    for ceases_on, executed_at in _LIVE.rows():
        return Standing(ceases_on=ceases_on, executed=executed_at is not None)
    return _NONE


def current() -> Standing:
    """The standing, at most :data:`FRESH_FOR` seconds old (for rendering)."""
    global _cached  # noqa: PLW0603  # one small per-process copy, replaced whole
    now = time.monotonic()
    if _cached is None or now - _cached[0] > FRESH_FOR:
        try:
            _cached = (now, read())
        except DatabaseError:
            # The pages that need no database (home, privacy, contact) keep working through an outage,
            # with the notice as last known; the forms fail on their own (they need the database).
            return _cached[1] if _cached is not None else _NONE
    return _cached[1]


def forget() -> None:
    """Read the database again on the next question (after a change made in this process)."""
    global _cached  # noqa: PLW0603
    _cached = None


def accepting_new_data(*, fresh: bool = True) -> bool:
    """May a form collect new personal data now?  False from the announcement on.

    Ask it fresh (the default) before storing anything; ``fresh=False`` answers from the
    per-process copy, for showing an empty form (at most :data:`FRESH_FOR` seconds old).
    """
    return not (read() if fresh else current()).announced


def rights_open() -> bool:
    """May the rights portal take a new request now?  Until the day before the date."""
    return not read().due()


def page_key() -> tuple[str]:
    """What a stored page's notice depends on: the date, whether it is carried out, and whether the
    rights portal is still open (it changes at midnight of the date)."""
    standing = current()
    if not standing.announced:
        return ("",)
    return (f"{standing.ceases_on}:{int(standing.executed)}:{int(standing.due())}",)
