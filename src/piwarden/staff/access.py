"""The staff read path: the only functions through which staff reach personal data.

Written one condition per line so that tests cover every branch (Zulip's
``access_*_by_*`` pattern).  Views never query personal-data models directly.

* Roles come from the declaration (``[[roles]]``): which categories a role may
  reveal, for which purposes, and whether it may read the audit log.
* Listing never decrypts.  Revealing is an explicit act with a purpose and a
  reason, checked against the role and the processing gate, and written to
  the audit log in the same transaction as the read.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext as _

from piwarden.audit.log import EventType, record_event
from piwarden.inquiries.models import PERSONAL_FIELDS, Inquiry
from piwarden.policy import gate
from piwarden.policy.declaration import Role, load_declaration

INQUIRY_CATEGORY = "consultation"
MIN_REASON_LENGTH = 10


class RevealRefused(Exception):
    """Staff asked for something their role or the person's choices do not allow."""


@dataclass(frozen=True)
class Revealed:
    inquiry: Inquiry
    values: dict[str, str | None]
    purpose: str


def staff_role(user: AbstractBaseUser | AnonymousUser) -> Role | None:
    """The declared role of a signed-in, verified staff member, or None."""
    if not isinstance(user, User):
        return None
    if not user.is_active or not user.is_staff:
        return None
    if not user.is_verified():  # type: ignore[attr-defined]  # added by django_otp's OTPMiddleware
        return None
    return _declared_role(user)


def _declared_role(user: User) -> Role | None:
    # The decorator, the view and the access function all ask within one request: one query.
    # The user object lives for one request, so the memo cannot outlive a change of groups.
    if not hasattr(user, "_piwarden_role"):
        declared = {r.id: r for r in load_declaration().roles}
        names = user.groups.values_list("name", flat=True)
        user._piwarden_role = next((declared[n] for n in names if n in declared), None)  # type: ignore[attr-defined]  # memo attribute
    role: Role | None = user._piwarden_role  # type: ignore[attr-defined]  # set just above
    return role


def can_see_inquiries(role: Role | None) -> bool:
    return role is not None and INQUIRY_CATEGORY in role.reveal_categories


def list_inquiries_for_staff(user: AbstractBaseUser | AnonymousUser) -> list[Inquiry]:
    """The inbox: no personal field is decrypted here (only non-personal columns are loaded)."""
    if not can_see_inquiries(staff_role(user)):
        raise Http404
    return list(
        Inquiry.objects.only(
            "id", "reference", "product", "status", "language", "submitted_at", "acknowledged_at"
        ).order_by("-submitted_at")[:200]
    )


def access_inquiry_for_staff(user: AbstractBaseUser | AnonymousUser, reference: str) -> Inquiry:
    """One inquiry, masked (nothing decrypted); 404 for staff whose role does not cover it."""
    if not can_see_inquiries(staff_role(user)):
        raise Http404
    try:
        return Inquiry.objects.select_related("person").get(reference=reference)
    except Inquiry.DoesNotExist:
        raise Http404 from None


def reveal_inquiry_fields(user: User, inquiry: Inquiry, *, fields: list[str], purpose: str, reason: str) -> Revealed:
    """Decrypt the chosen fields for a purpose the role allows; audit who, whom, what, why."""
    role = staff_role(user)
    if role is None:
        raise RevealRefused(_("You have no staff role that may see personal information."))
    if INQUIRY_CATEGORY not in role.reveal_categories:
        raise RevealRefused(_("Your role may not see consultation details."))
    if purpose not in role.reveal_purposes:
        raise RevealRefused(_("Your role may not reveal personal information for this purpose."))
    if not fields:
        raise RevealRefused(_("Choose at least one field to reveal."))
    if any(f not in PERSONAL_FIELDS for f in fields):
        raise RevealRefused(_("Unknown field."))
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise RevealRefused(_("Give a reason of at least 10 characters."))
    with transaction.atomic():
        decision = gate.check(inquiry.person, purpose)
        # Refused or not, the attempt is recorded: who, whose, which fields, why.
        record_event(
            EventType.PII_REVEALED if decision.allowed else EventType.PII_REVEAL_REFUSED,
            actor=user,
            person=inquiry.person,
            purpose=purpose,
            fields=fields,
            reason=reason.strip(),
            extra={
                "inquiry": inquiry.reference,
                **({"basis": decision.basis} if decision.allowed else {"refusal": decision.reason}),
            },
        )
        if decision.allowed:
            return Revealed(inquiry=inquiry, values={f: getattr(inquiry, f) for f in fields}, purpose=purpose)
    # Outside the block, so that the refusal's audit event commits.
    raise RevealRefused(_("The processing gate refused: %(reason)s.") % {"reason": _(decision.reason)})


def can_read_audit(role: Role | None) -> bool:
    return role is not None and role.read_audit
