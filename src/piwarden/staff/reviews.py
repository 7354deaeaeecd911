"""Access reviews (policy §五.3): what a campaign lists, and the signed record it leaves.

A line is a staff member's access as it stood at the opening: their declared roles, their
time-limited grants of personal data (:func:`grants_of`) and a summary of their reveals in the
period, counted from the audit log's ``pii.revealed`` events per category and purpose (and of
distinct people) — never a value.

When every line is decided, the campaign's canonical JSON (:func:`document_of`: the lines and
the decisions, who decided and when) is signed with the audit signing key
(:func:`piwarden.audit.signing.sign_document`).  :func:`verify_review` checks the signature and
that the stored rows still say what was signed, so an edit of either is found by whoever holds
the public key; :func:`verify_export` does the same for an exported file, without the database.
"""

from __future__ import annotations

import datetime
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User

from piwarden.audit import signing
from piwarden.audit.models import AuditEvent, EventType, canonical_json
from piwarden.policy.declaration import load_declaration
from piwarden.staff.models import AccessReview, AccessReviewLine, Decision
from piwarden.staff.training import add_months

CONTEXT = "piwarden access review v1"
UNRECORDED = "unrecorded"  # a reveal event that did not name its categories (older events)


def declared_roles_of(user: User) -> list[str]:
    declared = {r.id for r in load_declaration().roles}
    return sorted(n for n in user.groups.values_list("name", flat=True) if n in declared)


def grants_of(user: User, at: datetime.datetime) -> list[dict[str, Any]]:
    """The time-limited grants of personal data ``user`` holds at ``at``: each a JSON object
    (what, until when, approved by whom — no personal value).  None exist yet: the grants of the
    administrator's role plug in here, and the review lists, revokes and signs them with the rest."""
    return []


def next_review_due(last: AccessReview | None, now: datetime.datetime) -> bool:
    """Whether a campaign is due: ``PIWARDEN_ACCESS_REVIEW_MONTHS`` after the last one opened, or
    (the first) after the first active staff account was made: a new site has nothing to review."""
    if last is not None:
        since = last.opened_at
    else:
        first = User.objects.filter(is_staff=True, is_active=True).order_by("date_joined").first()
        if first is None:
            return False
        since = first.date_joined
    return now.date() >= add_months(since.date(), settings.PIWARDEN_ACCESS_REVIEW_MONTHS)


def period_start(last: AccessReview | None, now: datetime.datetime) -> datetime.datetime:
    """Reveals since the last campaign's opening; the first campaign looks back one period."""
    if last is not None:
        return last.period_end
    start = add_months(now.date(), -settings.PIWARDEN_ACCESS_REVIEW_MONTHS)
    return datetime.datetime.combine(start, now.timetz())


def reveal_summaries(
    user_ids: Iterable[int], start: datetime.datetime, end: datetime.datetime
) -> dict[int, list[dict[str, Any]]]:
    """Per staff member: ``[{category, purpose, reveals, people}]``, counted from the audit log."""
    counts: dict[int, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    people: dict[int, dict[tuple[str, str], set[Any]]] = defaultdict(lambda: defaultdict(set))
    events = (
        AuditEvent.objects.filter(
            event_type=EventType.PII_REVEALED, actor_id__in=list(user_ids), occurred_at__gte=start, occurred_at__lt=end
        )
        .values_list("actor_id", "purpose", "extra", "person_id")
        .iterator(chunk_size=2000)
    )
    for actor_id, purpose, extra, person_id in events:
        categories = extra.get("categories") if isinstance(extra, dict) else None
        for category in categories or [UNRECORDED]:
            counts[actor_id][(str(category), purpose)] += 1
            people[actor_id][(str(category), purpose)].add(person_id)
    return {
        actor: [
            {"category": c, "purpose": p, "reveals": n, "people": len(people[actor][(c, p)])}
            for (c, p), n in sorted(by_kind.items())
        ]
        for actor, by_kind in counts.items()
    }


def _iso(value: datetime.datetime | None) -> str | None:
    return value.astimezone(datetime.UTC).isoformat() if value is not None else None


def document_of(review: AccessReview) -> str:
    """The campaign and its decisions as one canonical JSON text (what is signed)."""
    lines = AccessReviewLine.objects.filter(review=review).select_related("staff", "decided_by").order_by("id")
    return canonical_json(
        {
            "context": CONTEXT,
            "review": review.pk,
            "opened_at": _iso(review.opened_at),
            "opened_by": review.opened_by_id,
            "period": {"start": _iso(review.period_start), "end": _iso(review.period_end)},
            "deadline": _iso(review.deadline),
            "completed_at": _iso(review.completed_at),
            "lines": [
                {
                    "staff": line.staff_id,
                    "username": line.staff.username,
                    "roles": line.roles,
                    "grants": line.grants,
                    "reveals": line.reveals,
                    "decision": line.decision,
                    "decided_by": line.decided_by_id,
                    "decided_at": _iso(line.decided_at),
                }
                for line in lines
            ],
        }
    )


def sign(review: AccessReview) -> None:
    """Put the document and its signature on ``review`` (the caller saves, in its transaction)."""
    review.document = document_of(review)
    review.signature = signing.sign_document(CONTEXT, review.document.encode())


@dataclass(frozen=True)
class Verification:
    ok: bool
    problem: str = ""


def verify_review(review: AccessReview, public_key: Path | None = None) -> Verification:
    """The stored review's signature holds, and its rows still say what was signed."""
    if not review.is_complete:
        return Verification(False, "the review is not complete: nothing is signed yet")
    if not review.signature:
        return Verification(False, "the review is complete but not signed yet (the signing key was unavailable)")
    if not signing.Verifier(public_key).holds_document(review.signature, CONTEXT, review.document.encode()):
        return Verification(False, "the signature does not match the stored document")
    if _without_names(document_of(review)) != _without_names(review.document):
        return Verification(False, "the stored lines or decisions differ from the signed document")
    return Verification(True)


def _without_names(document: str) -> Any:
    """The document without the user names: they are there for the reader, read from the accounts
    when signing, and an account renamed since is no edit of the review (its id is compared)."""
    loaded = json.loads(document)
    for line in loaded.get("lines", []):
        line.pop("username", None)
    return loaded


def export_of(review: AccessReview) -> dict[str, str]:
    """The signed review as a file holds it: the document exactly as signed, and the signature."""
    return {"context": CONTEXT, "document": review.document, "signature": review.signature}


def verify_export(exported: str, public_key: Path | None = None) -> Verification:
    """Check an exported review (``export_of`` as JSON) against the public key, without the database."""
    try:
        loaded = json.loads(exported)
        document, signed = loaded["document"], loaded["signature"]
    except (ValueError, KeyError, TypeError):
        return Verification(False, "not an exported access review")
    if not isinstance(document, str) or not isinstance(signed, str):
        return Verification(False, "not an exported access review")
    if not signing.Verifier(public_key).holds_document(signed, CONTEXT, document.encode()):
        return Verification(False, "the signature does not match the document")
    return Verification(True)


def pending(review: AccessReview) -> int:
    return AccessReviewLine.objects.filter(review=review, decision=Decision.PENDING).count()
