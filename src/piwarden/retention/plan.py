"""What the sweep will remove, category by category and day by day, and what holds data back.

``piwarden retention plan`` prints it; it reads the same rules (:mod:`piwarden.retention.rules`)
and the same declaration as the sweep and the privacy page, so the three cannot disagree.
Counts only: the plan never reads a personal value.
"""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count
from django.db.models.functions import TruncDate

from piwarden.policy.declaration import load_declaration
from piwarden.retention import actions
from piwarden.retention.cut import NextCut, next_cut
from piwarden.retention.models import LegalHold
from piwarden.retention.rules import Cut, Elsewhere, Kept, Swept, cutoff, retention_days, rules_of


@dataclass
class Line:
    """One declared category in the plan."""

    category: str
    model: str  # the table a swept rule removes rows of (a category may be kept in several); "" for the others
    days: int
    starts: str  # what starts the clock
    action: str  # "delete", "anonymise", or what else happens
    due_now: int = 0
    by_day: dict[datetime.date, int] = field(default_factory=dict)  # the day each record's time comes
    later: int = 0
    held_rows: int = 0  # of due_now, kept by legal holds
    held: list[str] = field(default_factory=list)  # what holds records back, in words
    note: str = ""


def plan(now: datetime.datetime, *, days: int = 30) -> list[Line]:
    """Per declared category: what is due now, then on each of the next ``days`` days, then later."""
    lines: list[Line] = []
    holds = {h.pk: h for h in LegalHold.objects.in_force(now)}
    held_categories = actions.held_categories(now)
    held_persons = actions.held_persons(now)
    cut: NextCut | None = None
    for category, rule in rules_of(load_declaration()):
        line = Line(
            category.id,
            rule.name if isinstance(rule, Swept) else "",
            retention_days(category),
            str(category.retention_from.get("en")),
            category.after_retention,
        )
        lines.append(line)
        if isinstance(rule, Kept):
            line.action, line.note = "kept", rule.reason
            continue
        if isinstance(rule, Elsewhere):
            line.action, line.note = "elsewhere", rule.by
            continue
        if isinstance(rule, Cut):
            cut = cut or next_cut(now)
            _cut(line, cut)
            continue
        _count(line, rule, category.id, now, days)
        holding = {h: c for c in rule.holding for h in held_categories.get(c, [])}
        for pk in sorted(holding):
            hold = holds[pk]
            scope = "the whole category" if holding[pk] in rule.categories else f"{holding[pk]}, which these name"
            line.held.append(f"hold {pk} on {scope} until {hold.ends_on} ({hold.reason})")
        if line.held:
            line.held_rows = line.due_now
        if rule.person is not None and held_persons:
            kept = actions.expired(rule, now).filter(**{f"{rule.person}__in": held_persons})
            if line.action == "anonymise":
                kept = kept.filter(actions.not_anonymised(rule.model))
            per_person = Counter(kept.values_list(rule.person, flat=True))
            line.held_rows += sum(per_person.values())
            for pk, hold in holds.items():
                if hold.person_id in per_person:
                    line.held.append(
                        f"hold {pk} on person {hold.person.reference if hold.person else ''} until {hold.ends_on}: "
                        f"{per_person[hold.person_id]} record(s) past their retention kept"
                    )
    return lines


def _cut(line: Line, cut: NextCut) -> None:
    """The audit log's line: where it was cut, where the next cut is and what holds it back."""
    line.action, line.note = "cut", "the audit log is cut at a signed checkpoint by the sweep"
    line.due_now = cut.events + cut.left
    if cut.done:
        line.note += f"; cut at seq {cut.done}"
        if cut.left:
            line.note += f" ({cut.left} event(s) at or below it not deleted yet)"
    if cut.checkpoint is not None:
        line.note += f"; next cut at seq {cut.checkpoint[1]} (checkpoint {cut.checkpoint[0]}-{cut.checkpoint[1]})"
    else:
        line.note += "; no checkpoint is past its retention yet: no cut due"
    if cut.unheld is not None:
        line.held_rows = cut.unheld - (cut.checkpoint[1] if cut.checkpoint else cut.done)
        line.note += f"; without the legal holds, at seq {cut.unheld}"
        line.held = list(cut.held)


def _count(line: Line, rule: Swept, category_id: str, now: datetime.datetime, days: int) -> None:
    category = load_declaration().category(category_id)
    rows = rule.model._default_manager.annotate(_retention_clock=rule.clock).filter(rule.when).order_by()
    if category.after_retention == "anonymise":
        rows = rows.filter(actions.not_anonymised(rule.model))
    line.due_now = rows.filter(_retention_clock__lte=cutoff(category, now)).count()
    horizon = now + datetime.timedelta(days=days)
    upcoming = (
        rows.filter(_retention_clock__gt=cutoff(category, now), _retention_clock__lte=cutoff(category, horizon))
        .annotate(day=TruncDate("_retention_clock"))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by("day")
    )
    shift = datetime.timedelta(days=retention_days(category))
    for row in upcoming:
        # Due on the clock's day plus the retention (UTC): the hourly sweep removes it that day.
        line.by_day[row["day"] + shift] = row["n"]
    line.later = rows.filter(_retention_clock__gt=cutoff(category, horizon)).count()
