"""The retention housekeeping: what the retention sweep's rules cannot remove row by row.

Rows of a table past their category's retention are the sweep's (:mod:`piwarden.retention.rules`,
with its plan, legal holds and one audit event per batch).  The jobs here remove what is not such
rows: files (sealed outbox copies, rights archives' files with their rows).  Each job deletes past
the ``retention_days`` that ``policy/declaration.toml`` gives its category (found by a field or file
store of the category, so a changed declaration changes the job).
:func:`piwarden.site.actions.sweep_retention` runs every job once and records what they deleted.
Every job is idempotent: a second sweep finds nothing.

Rows about no person that are useless once expired (CAPTCHA challenges) are deleted by the
same sweep (``EXPIRIES``), before the jobs; they count towards no category and no audit event.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from captcha.models import CaptchaStore
from django.conf import settings

from piwarden.accounts.models import Account, AccountState
from piwarden.children.actions import expire_guardian_requests
from piwarden.consent.cookies import RETENTION_DAYS as COOKIE_CHOICE_RETENTION_DAYS
from piwarden.consent.models import CookieConsent
from piwarden.people.actions import erase_unheld
from piwarden.policy.declaration import Category, load_declaration
from piwarden.retention.rules import SWEPT, retention_days
from piwarden.rights.models import RequestStatus, RightsRequest, VerificationCode
from piwarden.rights.personal_data import delete_expired_archives
from piwarden.rights.sealing import STORE as EXPORTS_STORE
from piwarden.vault.outbox import STORE as OUTBOX_STORE
from piwarden.vault.outbox import delete_expired


@dataclass(frozen=True)
class Job:
    """One deletion rule: what it deletes, which category it serves, and how."""

    name: str
    # A field ("app.Model.field") or file store ("app:store") of the category, whose declared
    # retention the job enforces.
    declared_by: str
    rule: str  # the rule, with {days} for the declared retention
    delete: Callable[[Category, datetime.datetime], int]

    def category(self) -> Category:
        declaration = load_declaration()
        found = (
            declaration.category_of_store(self.declared_by)
            if ":" in self.declared_by
            else declaration.category_of_field(self.declared_by)
        )
        if found is None:  # `policy check` refuses such a declaration; fail closed, delete nothing
            raise LookupError(f"policy/declaration.toml declares no category holding {self.declared_by}")
        return found

    def describe_rule(self) -> str:
        try:
            category = self.category()
        except LookupError as exc:
            return f"{self.name}: {exc}; nothing is deleted"
        return f"{self.name} ({category.id}): {self.rule.format(days=category.retention_days)}"


def _outbox(category: Category, now: datetime.datetime) -> int:
    # The outbox judges age by the sealed time in each file's name, against the same category.
    return delete_expired(Path(settings.PIWARDEN_OUTBOX_DIR), now)


def _archives(category: Category, now: datetime.datetime) -> int:
    return delete_expired_archives(now - datetime.timedelta(days=category.retention_days), now)


JOBS: tuple[Job, ...] = (
    Job(
        "rights archives",
        EXPORTS_STORE,
        "archives of access and copy requests past their expiry or prepared {days} days ago or more (the rows "
        "now, their sealed files once the sweep has committed), and sealed files whose row is gone",
        _archives,
    ),
    # Last: deleted files cannot be rolled back, so they go only once every database job has run
    # on a connection that still works (see ``sweep``).
    Job(
        "sealed outbox copies",
        OUTBOX_STORE,
        "sealed e-mail files sent more than {days} days ago, judged by the UTC time at the start of "
        "the file name (as `piwarden outbox prune`)",
        _outbox,
    ),
)


@dataclass(frozen=True)
class Expiry:
    """Rows useless after their expiry time: deleted once expired.

    Most are of no person (``category`` empty).  One that deletes a person's data early, by a rule
    of its own rather than its category's retention (a rights request never confirmed), names the
    category: the sweep's event counts it there, and the privacy page's list of categories deleted
    at the end of their retention (``JOBS``) does not claim it.
    """

    name: str
    declared_by: str  # a field the declaration lists as non_personal, or one of ``category``
    rule: str
    delete: Callable[[datetime.datetime], int]
    category: str = ""


def _captcha_challenges(now: datetime.datetime) -> int:
    # django-simple-captcha deletes these on every answer, in a write of its own; the consultation
    # page's CAPTCHA field leaves them to this sweep (piwarden.site.forms.OneTimeCaptchaField).
    deleted, _ = CaptchaStore.objects.filter(expiration__lte=now).delete()
    return int(deleted)  # django-simple-captcha ships no type information


# A rights request whose e-mail address was never confirmed is no request (policy/declaration.toml,
# rights_requests: "deleted 24 hours after it was sent"); its steps and codes go with it (cascade).
UNVERIFIED_REQUEST_HOURS = 24


# The person such a request created (or found) is erased with it when nothing else holds them.
UNHELD_ERASURE_REASON = "Unverified rights request deleted after 24 hours; nothing else held this person"


def _unverified_rights_requests(now: datetime.datetime) -> int:
    cutoff = now - datetime.timedelta(hours=UNVERIFIED_REQUEST_HOURS)
    stale = RightsRequest.objects.filter(status=RequestStatus.AWAITING_VERIFICATION, submitted_at__lte=cutoff)
    persons = set(stale.values_list("person_id", flat=True))
    _, per_model = stale.delete()
    # A person the request created, who never confirmed the code, would keep their e-mail's blind
    # index and a data key: erased as an erasure on request is, unless something else holds them.
    erase_unheld(persons, reason=UNHELD_ERASURE_REASON)
    return int(per_model.get(RightsRequest._meta.label, 0))


# An account whose e-mail address was never confirmed (the link works 3 days) is no account
# (policy/declaration.toml, visitor_accounts); its person is erased with it when nothing else holds them.
UNCONFIRMED_ACCOUNT_DAYS = 7
UNCONFIRMED_ACCOUNT_REASON = "Account never confirmed, deleted after 7 days; nothing else held this person"


def _unconfirmed_accounts(now: datetime.datetime) -> int:
    cutoff = now - datetime.timedelta(days=UNCONFIRMED_ACCOUNT_DAYS)
    stale = Account.objects.filter(state=AccountState.UNVERIFIED, created_at__lte=cutoff)
    persons = set(stale.values_list("person_id", flat=True))
    _, per_model = stale.delete()
    erase_unheld(persons, reason=UNCONFIRMED_ACCOUNT_REASON)
    return int(per_model.get(Account._meta.label, 0))


def _rights_codes(now: datetime.datetime) -> int:
    # A code past its 10 minutes opens nothing; typed afterwards it is simply wrong.
    deleted, _ = VerificationCode.objects.filter(expires_at__lte=now).delete()
    return deleted


def _cookie_choices(now: datetime.datetime) -> int:
    # The proof of a choice outlives the cookie (1 year) by as long as a consent record is kept.
    cutoff = now - datetime.timedelta(days=COOKIE_CHOICE_RETENTION_DAYS)
    deleted, _ = CookieConsent.objects.filter(given_at__lte=cutoff).delete()
    return deleted


EXPIRIES: tuple[Expiry, ...] = (
    Expiry(
        "expired CAPTCHA challenges",
        "captcha.CaptchaStore.expiration",
        "CAPTCHA challenges past their expiry time, answered or not",
        _captcha_challenges,
    ),
    Expiry(
        "unverified rights requests",
        "rights.RightsRequest.email",
        f"rights requests whose e-mail address was never confirmed, {UNVERIFIED_REQUEST_HOURS} hours after they "
        "were sent, with their steps and codes; the person they name is erased (crypto-shredded, in the erasure "
        "ledger) when nothing else holds them",
        _unverified_rights_requests,
        category="rights_requests",
    ),
    Expiry(
        "unconfirmed accounts",
        "accounts.Account.email",
        f"visitor accounts whose e-mail address was never confirmed, {UNCONFIRMED_ACCOUNT_DAYS} days after sign-up; "
        "the person they name is erased (crypto-shredded, in the erasure ledger) when nothing else holds them",
        _unconfirmed_accounts,
        category="visitor_accounts",
    ),
    Expiry(
        "unanswered guardian requests",
        "children.GuardianRequest.sign_up",
        "requests for a guardian's consent unanswered when their link expires (7 days): the request's own key "
        "destroyed, with the child's sealed sign-up and the guardian's address, and the request deleted (one "
        "audit event each)",
        expire_guardian_requests,
        category="child_sign_ups_awaiting_guardian",
    ),
    Expiry(
        "cookie choices past their retention",
        "consent.CookieConsent.given_at",
        f"cookie choices (the proof of consent, no person) {COOKIE_CHOICE_RETENTION_DAYS} days after they were made",
        _cookie_choices,
    ),
    Expiry(
        "expired one-time codes",
        "rights.VerificationCode.expires_at",
        "rights requests' one-time codes past their 10 minutes, used or not",
        _rights_codes,
    ),
)


@dataclass
class Sweep:
    """What one run deleted per job, and which jobs failed (with the first line of their error)."""

    deleted: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)  # job name -> category id
    retention_days: dict[str, int] = field(default_factory=dict)  # category id -> days

    def per_category(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, count in self.deleted.items():
            category = self.categories.get(name)
            if category is None:
                continue  # an expiry: no person's data
            counts[category] = counts.get(category, 0) + count
        return counts


def rules() -> list[str]:
    """Each job's rule with the declared retention, then the retention sweep's, for the command's help."""
    declaration = load_declaration()
    return (
        [job.describe_rule() for job in JOBS]
        + [f"{e.name} ({e.category or 'not personal'}): {e.rule}" for e in EXPIRIES]
        + [
            f"{r.category} ({r.name}): rows {retention_days(declaration.category(r.category))} days after "
            f"{r.clock_starts} (the retention sweep, in batches; see `piwarden retention plan`)"
            for r in SWEPT
        ]
    )
