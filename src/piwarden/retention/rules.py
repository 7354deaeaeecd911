"""The retention schedule: for every declared data category, the rule that ends it.

``policy/declaration.toml`` gives each category a retention (``retention_days``, counted from the
event its ``retention_from`` names) and what happens then (``after_retention``: delete or
anonymise).  This module says, for each category, which rows that is and from which of their
columns the clock runs, so that the sweep (:mod:`piwarden.retention.sweep`), the plan and the
privacy page all read one schedule.  Every declared category has exactly one rule, of one of
four kinds, so that "nothing happens" is always a stated decision (:func:`problems` fails
otherwise, and ``piwarden policy check`` with it):

* :class:`Swept`: the sweep removes the rows whose clock is older than the declared days;
* :class:`Elsewhere`: another job removes them (the housekeeping's jobs, the deletion of a staff
  account, the erasure of the person they identify), named;
* :class:`Cut`: the sweep cuts the audit log at a signed checkpoint and deletes the events before
  it (:mod:`piwarden.retention.cut`; the log is hash-chained, so only ever its oldest part);
* :class:`Kept`: nothing removes them yet, and the reason is given (no category is kept so today;
  the kind stays so that a new one cannot be left out silently).

Logs the Cybersecurity Law keeps at least six months (``network_log = true`` in the declaration,
RET-04) are never removed earlier: :func:`cutoff` counts at least :data:`NETWORK_LOG_DAYS` for
them whatever the declaration says, and their erasers keep them (``people.registry.Keeps``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import models
from django.db.models import Exists, Expression, F, ForeignObjectRel, OuterRef, Q
from django.db.models.functions import Cast, Coalesce, Greatest, Least
from django_tasks_db.models import DBTaskResult

from piwarden.accounts.models import SESSION_IDLE, AccountSession, LoginRecord
from piwarden.children.models import GuardianRequest, GuardianRequestStatus
from piwarden.consent.models import ConsentRecord
from piwarden.downloads.models import DownloadRecord, PageView
from piwarden.incidents.models import Notice as IncidentNotice
from piwarden.inquiries.models import Inquiry
from piwarden.monitoring.models import Alert
from piwarden.people.models import Person
from piwarden.policy.declaration import Category, Declaration
from piwarden.retention.models import LegalHold
from piwarden.revisions.models import ChangeNotice
from piwarden.rights.models import RequestStatus, RightsRequest
from piwarden.security.models import Refusal, SecurityEvent
from piwarden.staff.models import AccessGrant, AccessReview, TrainingNotice, TrainingRecord
from piwarden.staff.personal_data import delete_accounts

# The longest six calendar months have 184 days: a log kept this long is kept six months whatever
# the month it was written in (CSL 21(3), Art 23 from 2026).
NETWORK_LOG_DAYS = 184


@dataclass(frozen=True)
class Swept:
    """Rows of ``model`` that the sweep removes once ``clock`` is ``retention_days`` old.

    ``when`` narrows to the rows whose clock has started (a consent not withdrawn, a request not
    closed); ``person`` is the link to the person the rows are about (None: staff or nobody), by
    which a hold on a person keeps them and after which the person is erased when nothing else
    holds them.  ``categories``: every declared category the rows hold (the first is the one
    whose retention and ``after_retention`` decide); a category whose rows are in several tables
    has one rule per table.  ``erases`` False: removing the rows never leaves their person with
    nothing else kept (an account holds them, or they are erased already), so ``person`` serves the
    holds only and the batches are of :data:`~piwarden.retention.sweep.BATCH` rows, not people.
    ``remove``: how the rows go when not by a plain delete (in the batch's transaction; returns how
    many): it must leave none of them matching ``when`` and the clock.  ``held_by``: other categories
    whose holds keep these rows too (the rows name what they hold: a staff account, its training
    records).
    """

    categories: tuple[str, ...]
    model: type[models.Model]
    clock: Expression | F
    clock_starts: str  # what starts the clock, in words (the plan, the help, the docs)
    when: Q = field(default_factory=Q)
    person: str | None = None
    erases: bool = True
    remove: Callable[[models.QuerySet[Any]], int] | None = None
    held_by: tuple[str, ...] = ()

    @property
    def category(self) -> str:
        return self.categories[0]

    @property
    def holding(self) -> tuple[str, ...]:
        """The categories a hold on which keeps these rows."""
        return self.categories + self.held_by

    @property
    def name(self) -> str:
        return self.model._meta.label


@dataclass(frozen=True)
class Elsewhere:
    """Removed by another job, named."""

    category: str
    by: str


@dataclass(frozen=True)
class Kept:
    """Nothing removes it yet: why."""

    category: str
    reason: str


@dataclass(frozen=True)
class Cut:
    """Audit events: cut from the log's oldest end at a signed checkpoint by the sweep, with every
    other category the events hold (``piwarden.retention.cut``: the longest retention of them decides)."""

    category: str
    by: str


Rule = Swept | Elsewhere | Kept | Cut

_CLOSED = (RequestStatus.COMPLETED, RequestStatus.REFUSED)
_DEACTIVATION = "the staff account's deactivation; a reactivated account's clock stops"

# Logs, sessions and histories (the housekeeping's own jobs deleted them until 2026-12): first, so
# that a person whom only such rows still held is erased by the records' rules that follow.
# The sign-in records are network logs: cutoff() keeps them at least six months (RET-04).
_ATTEMPT = "the sign-in attempt"
_LOGS: tuple[Swept, ...] = (
    Swept(("staff_sessions",), Session, F("expire_date"), "the session's expiry"),
    Swept(("sign_in_records",), AccessLog, F("attempt_time"), _ATTEMPT),
    Swept(("sign_in_records",), AccessFailureLog, F("attempt_time"), _ATTEMPT),
    Swept(("sign_in_records",), AccessAttempt, F("attempt_time"), _ATTEMPT + " (the lockout counter's last update)"),
    Swept(
        ("queued_tasks",),
        DBTaskResult,
        F("finished_at"),
        "the job's completion (success or failure); a job waiting or running is kept",
        when=Q(finished_at__isnull=False),
    ),
    Swept(
        ("visitor_sessions",),
        AccountSession,
        Least(F("expires_at"), F("last_seen_at") + SESSION_IDLE),
        "the session's end: its hard expiry, or its idle time after the last request",
        person="account__person",
        erases=False,
    ),
    Swept(
        ("account_login_log",),
        LoginRecord,
        F("occurred_at"),
        "the sign-in attempt, the holder's account cancelled or not",
        person="person",
        erases=False,
    ),
    Swept(("download_history",), DownloadRecord, F("downloaded_at"), "the download", person="person", erases=False),
    Swept(("browsing_history",), PageView, F("viewed_at"), "the page view", person="person", erases=False),
    # Network logs (RET-04).  A refusal asked for review counts from the request or the decision;
    # an event goes once no refusal names it.  The key of each month they leave empty is destroyed
    # after the sweep (piwarden.security.actions.destroy_emptied_month_keys).
    Swept(
        ("security_refusals",),
        Refusal,
        Greatest(
            F("occurred_at"),
            Coalesce(F("review_requested_at"), F("occurred_at")),
            Coalesce(F("decided_at"), F("occurred_at")),
        ),
        "the refusal, or its review (asked for or decided), whichever is last",
    ),
    Swept(
        ("security_events", "security_event_records"),
        SecurityEvent,
        F("occurred_at"),
        "the event; one that a refusal still names is kept with the refusal",
        when=Q(refusals__isnull=True),
        person="person",
        erases=False,  # a network log holds nobody (people.actions.NOT_HOLDING)
    ),
)


def _linked_to_nothing() -> Q:
    """An erased person whom no row links to any more: every relation to Person (hidden ones too:
    legal holds, histories), so that a new one keeps the row without a change here.  They are all
    PROTECT: deleting the row can never take another with it."""
    unlinked = Q(erased_at__isnull=False)
    for relation in Person._meta.get_fields(include_hidden=True):
        if isinstance(relation, ForeignObjectRel) and (relation.one_to_many or relation.one_to_one):
            rows = relation.related_model._default_manager.filter(**{relation.field.name: OuterRef("pk")})
            unlinked &= Q(~Exists(rows))
    return unlinked


_RECORDS: tuple[Swept, ...] = (
    Swept(
        ("consultation",),
        Inquiry,
        F("submitted_at"),
        "the request's submission",
        person="person",
    ),
    Swept(
        ("rights_request_records", "rights_requests"),
        RightsRequest,
        Coalesce(F("completed_at"), F("decided_at")),
        "the closing of the request (completed or refused); with it go its steps and codes",
        when=Q(status__in=_CLOSED),
        person="person",
    ),
    Swept(
        ("consent_records",),
        ConsentRecord,
        F("withdrawn_at"),
        "the withdrawal of the consent: by the person, or when the person is erased (on request, or by this "
        "sweep once nothing else of theirs is kept)",
        when=Q(withdrawn_at__isnull=False),
        person="person",
    ),
    Swept(
        ("staff_security_alerts",),
        Alert,
        F("raised_at"),
        "the alert",
    ),
    Swept(
        ("staff_access_grants",),
        AccessGrant,
        Coalesce(F("expires_at"), F("decided_at")),
        "the grant's end (its expiry, or the decision that declined it); a grant awaiting a decision is kept",
        when=~Q(status=AccessGrant.Status.REQUESTED),
    ),
    Swept(
        ("staff_access_reviews",),
        AccessReview,
        F("completed_at"),
        "the completion of the review; with it go its lines (an open review is kept)",
        when=Q(completed_at__isnull=False),
    ),
    # A staff member's training records, then their account, 1095 days after its deactivation (the date
    # recorded by staff.actions.suspend_staff; reactivating removes it).  A hold on staff_training keeps
    # the account its records name too.  The account's row stays as a tombstone with its id only, which
    # the audit log's events and the records of who did what name (staff.personal_data.delete_accounts).
    Swept(
        ("staff_training",),
        TrainingRecord,
        F("staff__deactivation__deactivated_at"),
        _DEACTIVATION,
    ),
    Swept(
        ("staff_training",),
        TrainingNotice,
        F("staff__deactivation__deactivated_at"),
        _DEACTIVATION,
    ),
    Swept(
        ("staff_accounts",),
        User,
        F("deactivation__deactivated_at"),
        _DEACTIVATION + "; its row stays, with its id only, for the audit events and the records that name it",
        remove=delete_accounts,
        held_by=("staff_training",),
    ),
    Swept(
        ("legal_holds",),
        LegalHold,
        Coalesce(F("lifted_at"), Cast(F("ends_on"), models.DateTimeField())),
        "the hold's end: its last day, or its lifting",
    ),
    # Proof that a duty to tell was met (PIPL 17, 57; §十, §五.6), kept the declared three years.
    # Neither holds its person (people.actions.NOT_HOLDING), and no notice is made again once gone:
    # a version's notices are made once (revisions.mail.make_notices), an incident's before it closes.
    Swept(
        ("policy_notices",),
        ChangeNotice,
        Coalesce(F("sent_at"), F("created_at")),
        "the notice: its sending, or its making when it could not be sent",
        person="person",
        erases=False,
    ),
    Swept(
        ("incident_notices",),
        IncidentNotice,
        F("incident__closed_at"),
        "the closing of the incident; the notices of an open incident are kept",
        when=Q(incident__closed_at__isnull=False),
        person="person",
        erases=False,
    ),
    # A guardian's consent given stays with the child's information, which it allows; the rest (a
    # request declined, replaced, or never answered) goes three years after the decision or the
    # link's expiry, with its status and language (child_protection_records' fields of the row).
    Swept(
        ("guardian_contacts",),
        GuardianRequest,
        Coalesce(F("decided_at"), F("expires_at")),
        "the guardian's decision, or the link's expiry when they never answered; a consent given is kept with "
        "the child's information",
        when=~Q(status=GuardianRequestStatus.CONSENTED),
        person="person",
    ),
    # Last: the Person row of someone erased (timestamps only) goes once nothing links to it. The
    # audit events naming them are the last links (person.shredded at least): cut from the log
    # with the access records, 1095 days after the erasure; a legal hold on them links to it too.
    Swept(
        ("person_lifecycle",),
        Person,
        F("erased_at"),
        "the person's erasure; the row goes once no record links to it any more (the audit events naming them "
        "are the last: cut from the log three years after the erasure)",
        when=_linked_to_nothing(),
        person="id",
        erases=False,
    ),
)

SWEPT: tuple[Swept, ...] = (*_LOGS, *_RECORDS)

_HOUSEKEEPING = "`piwarden housekeeping` (piwarden.site.housekeeping)"
_WITH_ACCOUNT = (
    "deleted with the staff account's personal data by the sweep's staff_accounts rule "
    "(piwarden.staff.personal_data.delete_accounts), and by the staff member's eraser"
)

_CUT = (
    "the sweep cuts the audit log at the newest signed checkpoint whose events are all past their retention "
    "and before the first event a legal hold covers, then deletes the events before the cut in batches; "
    "`piwarden audit verify` checks the signed cut and the chain from it (piwarden.retention.cut)"
)

OTHERS: tuple[Elsewhere | Kept | Cut, ...] = (
    Elsewhere(
        "identifiers",
        "erased with the person (crypto-shredding clears the look-up digests) as soon as the sweep has removed the "
        "last record that held them, earlier than declared",
    ),
    Cut("access_records", _CUT),
    Cut("access_reasons", _CUT + "; the reasons go with the events they explain"),
    Elsewhere(
        "rate_limit_counters",
        "the rate limiter itself deletes counters a day after their window (piwarden.ratelimit.limiter)",
    ),
    Elsewhere("staff_authenticators", _WITH_ACCOUNT),
    Elsewhere("staff_sign_in_state", _WITH_ACCOUNT),
    Elsewhere("staff_preferences", _WITH_ACCOUNT),
    Elsewhere("staff_devices", _WITH_ACCOUNT),
    Elsewhere("outbox_copies", _HOUSEKEEPING),
    Elsewhere("rights_archives", _HOUSEKEEPING),
    # Visitor accounts (piwarden.accounts): the account goes when its holder cancels it (the person's
    # erasure), or by the housekeeping when its address was never confirmed within 7 days.
    Elsewhere("visitor_accounts", "erased when the holder cancels the account; " + _HOUSEKEEPING + " (unconfirmed)"),
    Elsewhere("visitor_account_state", "erased when the holder cancels the account; " + _HOUSEKEEPING),
    Elsewhere(
        "cessation_notices",
        "deleted when the announcement is withdrawn, and with each person's erasure on the closure date "
        "(piwarden.cessation)",
    ),
    Elsewhere(
        "child_sign_ups_awaiting_guardian",
        "destroyed with the request's own key at the guardian's answer; " + _HOUSEKEEPING + " when the link "
        "expires unanswered (7 days)",
    ),
    Elsewhere(
        "child_protection_records",
        "erased with the child's information (the guardian's refusal, a staff flag, the person's erasure), never "
        "earlier: the mark keeps the child's data hidden from roles not granted it while that data exists; the "
        "status and language of guardian requests go with the guardian_contacts rule",
    ),
)


def rules_of(declaration: Declaration) -> Iterator[tuple[Category, Rule]]:
    """Each declared category with its rule (a category kept in several tables: each table's), in the
    declaration's order."""
    by_category: dict[str, list[Rule]] = {}
    for swept in SWEPT:
        for category_id in swept.categories:
            by_category.setdefault(category_id, []).append(swept)
    for other in OTHERS:
        by_category.setdefault(other.category, []).append(other)
    for declared in declaration.categories:
        for rule in by_category.get(declared.id, []):
            yield declared, rule


def problems(declaration: Declaration) -> list[str]:
    """One message per declared category without a rule, rule without a category, category with rules
    of more than one kind (or two sweeps of one table), or log kept too briefly."""
    declared = {c.id for c in declaration.categories}
    swept = [(c, s.model) for s in SWEPT for c in s.categories]
    others = [o.category for o in OTHERS]
    ruled = [c for c, _ in swept] + others
    found = [
        f"category {c!r}: no retention rule (add one to piwarden.retention.rules: swept, elsewhere or kept)"
        for c in sorted(declared - set(ruled))
    ]
    found += [f"retention rule for {c!r}, which is not declared" for c in sorted(set(ruled) - declared)]
    twice = {c for c in others if others.count(c) > 1 or c in {s for s, _ in swept}}
    twice |= {c for c, model in swept if swept.count((c, model)) > 1}
    found += [f"category {c!r} has more than one retention rule" for c in sorted(twice)]
    found += [
        f"category {c.id!r} is a network log: the law keeps it at least six months ({NETWORK_LOG_DAYS} days), not "
        f"{c.retention_days}"
        for c in declaration.categories
        if c.network_log and c.retention_days < NETWORK_LOG_DAYS
    ]
    return found


def retention_days(category: Category) -> int:
    """The declared days; never fewer than six months for a network log (RET-04)."""
    return max(category.retention_days, NETWORK_LOG_DAYS) if category.network_log else category.retention_days


def cutoff(category: Category, now: datetime.datetime) -> datetime.datetime:
    """Rows whose clock is at or before this are past their retention at ``now``."""
    return now - datetime.timedelta(days=retention_days(category))
