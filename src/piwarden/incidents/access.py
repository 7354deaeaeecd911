"""What the incident register reads, and for whom.

Only a role declared with ``handle_incidents`` opens the register (the privacy officer and the
security auditor); another is refused as the audit log refuses
(:func:`piwarden.staff.access.refuse_opening`: an audited 404).  The register holds no personal
value (counts, categories, staff's words about systems), so opening it is not itself recorded;
every change is, by :mod:`piwarden.incidents.actions`.

The persons affected by an incident are chosen by the declared categories it touched, as every
notice to people finds them (:func:`piwarden.people.contacts.holding`).  A category stored in
files, or about staff or nobody, chooses nobody: the officer lists those persons' addresses instead.
"""

from __future__ import annotations

from typing import NoReturn

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from piwarden.incidents.models import Incident
from piwarden.staff import permissions
from piwarden.staff.access import refuse_opening

PAGE_SIZE = 50


def may_handle(user: AbstractBaseUser | AnonymousUser) -> bool:
    return permissions.may(user, permissions.Capability.HANDLE_INCIDENTS)


def refuse_unless_handler(user: AbstractBaseUser | AnonymousUser, page: str, *, about: str = "") -> None:
    if not may_handle(user):
        _refuse(user, page, about=about)


def _refuse(user: AbstractBaseUser | AnonymousUser, page: str, *, about: str = "") -> NoReturn:
    refuse_opening(user, page, gettext_noop("the role may not keep the incident register"), about=about)


def list_incidents(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Incident]:
    refuse_unless_handler(user, "incidents")
    return Incident.objects.all()


def open_incident(user: AbstractBaseUser | AnonymousUser, slug: str, *, page: str = "incident") -> Incident:
    """One incident, for the roles that keep the register; another role, or no such incident, a 404 (recorded)."""
    refuse_unless_handler(user, page, about=slug)
    incident = Incident.objects.filter(slug=slug).first()
    if incident is None:
        _refuse(user, page, about=slug)
    return incident


def published_incident(slug: str) -> Incident | None:
    """The incident whose public notice is published, for the public page (anyone may read it)."""
    return Incident.objects.filter(slug=slug, published_at__isnull=False).first()
