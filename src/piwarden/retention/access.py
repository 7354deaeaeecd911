"""Reads of legal holds for the staff console: the privacy officer's (``Capability.PLACE_HOLDS``).

A hold names a person by the reference the console shows (never a personal value) and carries a
case reference; another role asking is refused (recorded) and answered as if nothing were there.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from piwarden.people.models import Person
from piwarden.retention.models import LegalHold
from piwarden.staff.access import refuse_opening
from piwarden.staff.permissions import Capability, may

REFERENCE_LENGTH = 10  # Person.reference: the id's last 10 hex digits


def holds_for_staff(user: AbstractBaseUser | AnonymousUser) -> QuerySet[LegalHold]:
    """Every hold, newest first, for the holds page."""
    if not may(user, Capability.PLACE_HOLDS):
        refuse_opening(user, "legal holds", gettext_noop("the role does not place legal holds"))
    return LegalHold.objects.select_related("person", "placed_by", "lifted_by").order_by("-placed_at", "-id")


def person_for_hold(user: AbstractBaseUser | AnonymousUser, reference: str) -> Person | None:
    """The person with this reference (the id's last 10 hex digits, as the console shows it), or None."""
    if not may(user, Capability.PLACE_HOLDS):
        refuse_opening(user, "legal holds", gettext_noop("the role does not place legal holds"))
    tail = reference.strip().lower()
    if len(tail) != REFERENCE_LENGTH:
        return None
    found = [p for p in Person.objects.filter(id__endswith=tail) if p.reference.lower() == tail]
    return found[0] if len(found) == 1 else None
