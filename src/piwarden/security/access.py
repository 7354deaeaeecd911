"""Reads of the refusals: the person's view of their review (by the reference only they were shown),
and the security role's, masked and recorded."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import NoReturn

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from piwarden.audit.log import EventType, record_event
from piwarden.security.models import Refusal, SecurityEvent
from piwarden.staff import permissions
from piwarden.staff.access import actor_of, refuse_opening

PAGE_SIZE = 50


@dataclass(frozen=True)
class ReviewStatus:
    """What the person sees of their refusal's review: never the client's data, only the answer."""

    reference: str
    rule: str
    occurred_at: datetime.datetime
    requested: bool
    decision: str
    decision_label: str
    decision_reason: str
    decided_at: datetime.datetime | None


def review_status(reference: str) -> ReviewStatus | None:
    refusal = Refusal.objects.filter(reference=reference).first()
    if refusal is None:
        return None
    return ReviewStatus(
        refusal.reference,
        refusal.get_rule_display(),
        refusal.occurred_at,
        refusal.review_requested_at is not None,
        refusal.decision,
        refusal.get_decision_display() if refusal.decision else "",
        refusal.decision_reason,
        refusal.decided_at,
    )


# --- the security role ----------------------------------------------------------------------


def _refuse(user: AbstractBaseUser | AnonymousUser, page: str, about: str = "") -> NoReturn:
    refuse_opening(user, page, gettext_noop("the role may not review refusals"), about=about)


def _record_view(user: AbstractBaseUser | AnonymousUser, page: str, extra: dict[str, object]) -> None:
    with transaction.atomic(durable=True):
        record_event(EventType.SECURITY_VIEWED, actor=actor_of(user), extra={"page": page, **extra})


def list_refusals(user: AbstractBaseUser | AnonymousUser, *, awaiting: bool) -> QuerySet[Refusal]:
    """The refusals, newest first (only those awaiting review with ``awaiting``); the opening is recorded."""
    if not permissions.may(user, permissions.Capability.REVIEW_SECURITY_REFUSALS):
        _refuse(user, "refusals")
    _record_view(user, "refusals", {"filter": {"awaiting": "1"}} if awaiting else {})
    refusals = Refusal.objects.select_related("decided_by").defer("message")
    if awaiting:
        return refusals.filter(review_requested_at__isnull=False, decided_at__isnull=True)
    return refusals


@dataclass(frozen=True)
class RefusalView:
    """One refusal for the security role: why the rule fired, the client masked, the person's words."""

    refusal: Refusal
    client: str  # network and keyed digest of the address
    device: str  # the month's device signature
    browser: str  # browser and system families
    same_device: int  # security events of the same device signature this month
    message: str | None


def open_refusal(user: AbstractBaseUser | AnonymousUser, reference: str) -> RefusalView:
    """One refusal; another role, or no such refusal, is a 404 (recorded).  The opening is recorded."""
    if not permissions.may(user, permissions.Capability.REVIEW_SECURITY_REFUSALS):
        _refuse(user, "refusal", reference)
    refusal = Refusal.objects.select_related("event", "decided_by").filter(reference=reference).first()
    if refusal is None:
        _refuse(user, "refusal", reference)
    _record_view(user, "refusal", {"refusal": refusal.reference})
    event = refusal.event
    same = SecurityEvent.objects.filter(device=event.device, data_key_id=event.data_key_id).count()
    detail = refusal.detail if isinstance(refusal.detail, dict) else {}
    # The client as it was masked when refused: nothing of the event is decrypted here.  The person's
    # own words, written for the reviewer, are (when they asked for a review).
    message = refusal.message if refusal.review_requested_at is not None else None
    return RefusalView(
        refusal, str(detail.get("client", "")), event.device, str(detail.get("browser", "")), same, message
    )
