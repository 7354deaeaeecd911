"""The staff read path of consultation requests: the only functions through which staff reach them.

Written one condition per line so that tests cover every branch (Zulip's ``access_*_by_*``
pattern).  Views never query the requests directly, and these functions hold every check
themselves: a view, an API or a command calling them gets the same refusals, whatever its
form offered.

* Listing never decrypts.  Revealing is an explicit act with a purpose and a reason, checked
  against the staff member's role (:mod:`piwarden.staff.access`), then by the processing gate
  for every category the chosen fields belong to, and written to the audit log in the same
  transaction as the read.
* A child's record (its person marked, ``children.models.ChildMark``) is revealed only on an
  approval ticket (CHD-03: ``staff.actions.request_child_ticket``, approved by a second person),
  and the reveal's event names the ticket and its approver.
* Every refusal is recorded (role, purpose, field, reason, gate; refused openings of a page; a
  reveal that failed for want of keys), each in a transaction of its own, committed before the
  caller hears of it.  These functions must therefore run outside any transaction (they open
  durable ones).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from piwarden.audit.log import EventType, record_event
from piwarden.children.access import record_child_opening
from piwarden.inquiries.models import PERSONAL_FIELDS, Inquiry
from piwarden.policy.declaration import Role, load_declaration
from piwarden.processing import gate
from piwarden.staff import permissions
from piwarden.staff.access import actor_of, refuse_opening
from piwarden.staff.permissions import Capability
from piwarden.staff.training import training_lapse
from piwarden.vault.crypto import CiphertextInvalid
from piwarden.vault.keys import VaultUnavailable

MIN_REASON_LENGTH = 10
# Short on purpose: a reason names a task ("calling back about the quote"), not a person.
MAX_REASON_LENGTH = 200
INBOX_PAGE_SIZE = 50


class RevealRefused(Exception):
    """Staff asked for something their role or the person's choices do not allow.

    ``status`` tells an HTTP interface whether the request was malformed (400) or refused (403).
    """

    def __init__(self, message: str, *, status: HTTPStatus = HTTPStatus.FORBIDDEN) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Revealed:
    inquiry: Inquiry
    values: dict[str, str | None]
    purpose: str


@dataclass(frozen=True)
class InboxFilter:
    """What the inbox may be narrowed by: only non-personal columns."""

    status: str = ""
    product: str = ""
    submitted_from: datetime.date | None = None
    submitted_to: datetime.date | None = None


def field_categories(fields: Sequence[str]) -> dict[str, str]:
    """Each consultation field's declared category (a field the declaration lacks maps to nothing)."""
    declaration = load_declaration()
    found = {f: declaration.category_of_field(f"inquiries.Inquiry.{f}") for f in fields}
    return {f: c.id for f, c in found.items() if c is not None}


def inquiry_categories() -> set[str]:
    return set(field_categories(PERSONAL_FIELDS).values())


def list_inquiries_for_staff(
    user: AbstractBaseUser | AnonymousUser, filters: InboxFilter | None = None
) -> QuerySet[Inquiry]:
    """The inbox, newest first (page it): every request for a role that sees them all, the staff
    member's own for the others (sales: those assigned to them); no personal column is even loaded."""
    if not permissions.may(user, Capability.SEE_INQUIRIES):
        refuse_opening(user, "inbox", gettext_noop("the role does not include consultation requests"))
    filters = filters or InboxFilter()
    rows = Inquiry.objects.only(
        "id", "reference", "product", "status", "language", "submitted_at", "acknowledged_at", "assigned_to"
    ).select_related("assigned_to")
    # The id (UUIDv7) breaks ties, so pages never overlap.
    rows = permissions.inquiries_in_scope(user, rows).order_by("-submitted_at", "-id")
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.product:
        rows = rows.filter(product=filters.product)
    # Dates are the staff member's calendar days (TIME_ZONE), both ends included.
    if filters.submitted_from is not None:
        rows = rows.filter(submitted_at__date__gte=filters.submitted_from)
    if filters.submitted_to is not None:
        rows = rows.filter(submitted_at__date__lte=filters.submitted_to)
    return rows


def access_inquiry_for_staff(user: AbstractBaseUser | AnonymousUser, reference: str) -> Inquiry:
    """One inquiry, masked (nothing decrypted); 404 for staff whose role does not cover it, and for
    one assigned to another staff member when the role sees only its holder's own (recorded)."""
    if not permissions.may(user, Capability.SEE_INQUIRIES):
        refuse_opening(user, "inquiry", gettext_noop("the role does not include consultation requests"))
    try:
        inquiry = Inquiry.objects.select_related("person", "assigned_to").get(reference=reference)
    except Inquiry.DoesNotExist:
        raise Http404 from None
    if not permissions.may_open_inquiry(user, inquiry):
        refusal = (
            gettext_noop("the role may not see children's data")
            if permissions.is_childs(inquiry)
            else gettext_noop("the consultation request is not assigned to this staff member")
        )
        refuse_opening(user, "inquiry", refusal, about=reference)
    if permissions.is_childs(inquiry):
        record_child_opening(user, inquiry.person, page="inquiry", about=inquiry.reference)
    return inquiry


@dataclass(frozen=True)
class _Refusal:
    code: str  # English, recorded in the log (gettext_noop: translated when shown)
    message: str  # for the staff member, in their language
    status: HTTPStatus = HTTPStatus.FORBIDDEN


def _reveal_refusal(
    user: User | None, role: Role | None, fields: list[str], *, categories: set[str], purpose: str, reason: str
) -> _Refusal | None:
    """The read path's own checks, before the gate; None when the role and request are fine."""
    bad = HTTPStatus.BAD_REQUEST
    if role is None:
        return _Refusal(gettext_noop("no staff role"), _("You have no staff role that may see personal information."))
    if not fields:
        return _Refusal(gettext_noop("no field chosen"), _("Choose at least one field to reveal."), bad)
    if any(f not in PERSONAL_FIELDS for f in fields):
        return _Refusal(gettext_noop("unknown field"), _("Unknown field."), bad)
    if not all(permissions.may_see_category(role, c) for c in categories):
        return _Refusal(
            gettext_noop("the role may not see this category"), _("Your role may not see consultation details.")
        )
    if not all(permissions.may_reveal(role, c, purpose) for c in categories):
        return _Refusal(
            gettext_noop("the role may not reveal this category for this purpose"),
            _("Your role may not reveal personal information for this purpose."),
        )
    if (lapse := training_lapse(user, role)) is not None:
        return _Refusal(lapse.code, lapse.message())
    if len(reason) < MIN_REASON_LENGTH:
        return _Refusal(gettext_noop("reason too short"), _("Give a reason of at least 10 characters."), bad)
    if len(reason) > MAX_REASON_LENGTH:
        return _Refusal(gettext_noop("reason too long"), _("Keep the reason to 200 characters at most."), bad)
    return None


@dataclass(frozen=True)
class _Attempt:
    """A reveal as asked for, to record when it is refused or fails."""

    actor: User | None
    inquiry: Inquiry
    fields: list[str]
    purpose: str
    reason: str

    def record(self, event: EventType, refusal: str) -> None:
        """Committed on its own: the caller's answer is an error, and the record must outlive it."""
        with transaction.atomic(durable=True):
            record_event(
                event,
                actor=self.actor,
                person=self.inquiry.person,
                # Whatever was posted, bounded: the log keeps what was asked, never an unbounded blob.
                purpose=self.purpose[:40],
                fields=[f[:40] for f in self.fields[: len(PERSONAL_FIELDS) + 1]],
                reason=self.reason[:MAX_REASON_LENGTH],
                extra={"inquiry": self.inquiry.reference, "refusal": refusal},
            )


def reveal_inquiry_fields(
    user: AbstractBaseUser | AnonymousUser, inquiry: Inquiry, *, fields: Sequence[str], purpose: str, reason: str
) -> Revealed:
    """Decrypt the chosen fields for a purpose the role and the gate allow; audit who, whom, what, why.

    Refused (by the role, the request or the gate) → :class:`RevealRefused`, recorded.  Keys
    missing → ``VaultUnavailable`` propagates (the web layer answers 503), recorded too.  A
    value that fails its integrity check → :class:`RevealRefused` (500), recorded, nothing shown.
    """
    chosen = list(dict.fromkeys(fields))
    reason = reason.strip()
    actor = actor_of(user)
    categories = set(field_categories(chosen).values())
    attempt = _Attempt(actor, inquiry, chosen, purpose, reason)
    refusal = _reveal_refusal(
        actor, permissions.staff_role(user), chosen, categories=categories, purpose=purpose, reason=reason
    )
    if refusal is None and not permissions.may_open_inquiry(user, inquiry):
        refusal = _Refusal(
            gettext_noop("the consultation request is not assigned to this staff member"),
            _("This consultation request is not assigned to you."),
        )
    child = permissions.is_childs(inquiry)
    tickets = permissions.child_tickets(user, inquiry.person_id, categories, purpose) if child else []
    if refusal is None and tickets is None:
        refusal = _Refusal(
            gettext_noop("a child's record without an approved ticket"),
            _(
                "This is a child's record (privacy policy, section 8): revealing it needs an approval ticket. "
                "Ask for one on this page; a second person whose role approves grants must approve it."
            ),
        )
    if refusal is not None:
        attempt.record(EventType.PII_REVEAL_REFUSED, refusal.code)
        raise RevealRefused(refusal.message, status=refusal.status)
    approved = (
        {
            "child": True,
            "tickets": [t.pk for t in tickets],
            "approvers": sorted({t.decided_by_id or 0 for t in tickets}),
        }
        if child and tickets
        else {}
    )
    use = gate.Use(
        context="staff.reveal",
        actor=actor,
        fields=chosen,
        stated_reason=reason,
        refused_event=EventType.PII_REVEAL_REFUSED,
        extra={"inquiry": inquiry.reference},
    )
    try:
        with gate.processing(inquiry.person, purpose, categories=categories, use=use) as permit:
            values = {f: getattr(inquiry, f) for f in chosen}
            record_event(
                EventType.PII_REVEALED,
                actor=actor,
                person=inquiry.person,
                purpose=purpose,
                fields=chosen,
                reason=reason,
                extra={
                    "inquiry": inquiry.reference,
                    **approved,
                    "basis": permit.decision.basis,
                    "categories": sorted(categories),
                    **(
                        {"grants": grants}
                        if (grants := permissions.active_grant_ids(user, categories, purpose))
                        else {}
                    ),
                },
            )
    except gate.ProcessingRefused as refused:
        message = _("The processing gate refused: %(reason)s.") % {"reason": _(refused.decision.reason)}
        raise RevealRefused(message) from None
    except VaultUnavailable:
        # The read rolled back with its record; the attempt itself must not vanish.
        attempt.record(EventType.PII_REVEAL_FAILED, gettext_noop("keys unavailable"))
        raise
    except CiphertextInvalid:
        # A value that does not authenticate where it is stored was altered or moved in the
        # database: show nothing of the request, and leave a trace for the security team.
        attempt.record(EventType.PII_REVEAL_FAILED, gettext_noop("a stored value failed its integrity check"))
        message = _(
            "A stored value failed its integrity check: it may have been altered in the database. "
            "Nothing was shown. Tell the security team; this attempt is in the audit log."
        )
        raise RevealRefused(message, status=HTTPStatus.INTERNAL_SERVER_ERROR) from None
    return Revealed(inquiry=inquiry, values=values, purpose=purpose)
