"""Reads: the published resources (anyone), the library for staff who manage it, and a signed-in
person's own histories (for their account page)."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_noop

from piwarden.downloads import browsing
from piwarden.downloads.models import DownloadRecord, PageView, Resource
from piwarden.people.models import Person
from piwarden.staff.access import refuse_opening
from piwarden.staff.permissions import Capability, may

HISTORY_ROWS = 50  # the most recent, on the account page (the rights portal's copy has every row)


def published_resources() -> QuerySet[Resource]:
    return Resource.objects.filter(withdrawn_at__isnull=True).order_by("-published_at")


def published_resource(resource_id: uuid.UUID) -> Resource:
    """A resource anyone may download: 404 for one withdrawn or never published."""
    found = published_resources().filter(pk=resource_id).first()
    if found is None:
        raise Http404
    return found


def resources_for_staff(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Resource]:
    """Every resource, withdrawn ones included, for a role that manages the library."""
    if not may(user, Capability.MANAGE_DOWNLOADS):
        refuse_opening(user, "downloads", gettext_noop("the role does not manage the downloads library"))
    return Resource.objects.order_by("-published_at")


def resource_for_staff(user: AbstractBaseUser | AnonymousUser, resource_id: uuid.UUID) -> Resource:
    found = resources_for_staff(user).filter(pk=resource_id).first()
    if found is None:
        raise Http404
    return found


def download_history(person: Person) -> list[DownloadRecord]:
    """The person's latest downloads, newest first (their own account page)."""
    return list(
        DownloadRecord.objects.filter(person=person)
        .select_related("resource")
        .order_by("-downloaded_at")[:HISTORY_ROWS]
    )


def browsing_history(person: Person) -> list[PageView]:
    """The person's latest page views, newest first; what waits in this process is written first."""
    if browsing.waiting():
        browsing.flush()
    return list(PageView.objects.filter(person=person).order_by("-viewed_at", "-id")[:HISTORY_ROWS])
