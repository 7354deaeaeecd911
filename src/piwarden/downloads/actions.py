"""The downloads' write paths: publishing, editing and withdrawing a resource (staff, audited), and
the visitor's two histories (recorded on their cookie choice, cleared by them, audited)."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Literal, overload

from django.contrib.auth.models import User
from django.db import connections, transaction
from django.utils import timezone

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.downloads import browsing, files
from piwarden.downloads.kinds import Kind
from piwarden.downloads.models import DownloadRecord, PageView, Resource
from piwarden.people.models import Person
from piwarden.processing import gate


@dataclass(frozen=True)
class ResourceText:
    """What staff write about a resource, in both languages (validated by forms.ResourceForm)."""

    title_zh: str
    title_en: str
    description_zh: str
    description_en: str


def publish_resource(text: ResourceText, upload: IO[bytes], *, kind: Kind, filename: str, by: User) -> Resource:
    """Store the file under a new random name, then publish it (the file is removed if that fails)."""
    stored_name, size, sha256 = files.store(upload)
    try:
        return _publish(text, stored_name, size, sha256, kind=kind, filename=filename, by=by)
    except BaseException:
        files.remove(stored_name)
        raise


@transaction.atomic(durable=True)
def _publish(
    text: ResourceText, stored_name: str, size: int, sha256: str, *, kind: Kind, filename: str, by: User
) -> Resource:
    now = timezone.now()
    resource = Resource.objects.create(
        title_zh=text.title_zh,
        title_en=text.title_en,
        description_zh=text.description_zh,
        description_en=text.description_en,
        filename=filename,
        kind=kind.id,
        size=size,
        sha256=sha256,
        stored_name=stored_name,
        published_at=now,
        updated_at=now,
        published_by=by,
    )
    record_event(
        EventType.DOWNLOAD_PUBLISHED,
        actor=by,
        extra={"resource": str(resource.pk), "kind": kind.id, "size": size, "sha256": sha256},
    )
    return resource


@transaction.atomic(durable=True)
def edit_resource(resource: Resource, text: ResourceText, *, by: User) -> Resource:
    changed = sorted(name for name, value in vars(text).items() if getattr(resource, name) != value)
    for name, value in vars(text).items():
        setattr(resource, name, value)
    resource.updated_at = timezone.now()
    resource.save(update_fields=[*vars(text), "updated_at"])
    record_event(EventType.DOWNLOAD_EDITED, actor=by, extra={"resource": str(resource.pk), "changed": changed})
    return resource


@transaction.atomic(durable=True)
def withdraw_resource(resource: Resource, *, by: User) -> Resource:
    """No longer listed or served; the file is deleted once this commits, the row stays for the
    histories that name it."""
    if resource.is_withdrawn:
        return resource
    resource.withdrawn_at = timezone.now()
    resource.save(update_fields=["withdrawn_at"])
    record_event(EventType.DOWNLOAD_WITHDRAWN, actor=by, extra={"resource": str(resource.pk)})
    stored_name = resource.stored_name
    transaction.on_commit(lambda: files.remove(stored_name))
    return resource


# --- the visitor's histories --------------------------------------------------------------------


HISTORY_PURPOSE = "visitor_history"  # policy/declaration.toml: consent, not surviving a restriction
# Each history's category, and the cookie category whose choice in the browser is its consent.
_HISTORIES: dict[str, Literal["functional", "analytics"]] = {
    "download_history": "functional",
    "browsing_history": "analytics",
}


@overload
def _history(person: Person, category: str, use: gate.Use) -> AbstractContextManager[gate.Permit]: ...
@overload
def _history(person: gate.Each, category: str, use: gate.Use) -> AbstractContextManager[gate.Permits]: ...
def _history(
    person: Person | gate.Each, category: str, use: gate.Use
) -> AbstractContextManager[gate.Permit] | AbstractContextManager[gate.Permits]:
    """The gate's decision on keeping ``category`` for the person (or each of several people): a
    restriction or an erasure refuses it."""
    return gate.processing(
        person, HISTORY_PURPOSE, categories={category}, use=use, browser=gate.BrowserConsent(_HISTORIES[category])
    )


def record_download(person: Person, resource: Resource) -> DownloadRecord | None:
    """One download in the person's history, if the gate allows it: the caller saw their browser
    allow functional cookies (the consent), and the gate refuses a person who restricted processing
    (PIPL 44) or was erased (None then, and the file is served all the same).  The refusal is
    recorded once per restriction, not at each download (``gate.Use.refused_once``), and does not
    name the file: the log must not keep, in its stead, the history the restriction stops.

    No audit event for the row: it is the person's own record, kept by their choice and deleted by
    it; a copy in the append-only log would outlive their clearing it."""
    use = gate.Use("downloads.download", actor_kind=ActorKind.VISITOR, refused_once=True)
    try:
        with _history(person, "download_history", use):
            return DownloadRecord.objects.create(person=person, resource=resource, downloaded_at=timezone.now())
    except gate.ProcessingRefused:
        return None


_PAGE_VIEW_COLUMNS = ("person_id", "path", "viewed_at")  # PageView's, but its own key
MAX_PATH = 200  # PageView.path's max_length


def record_page_views(views: Sequence[tuple[uuid.UUID, str, datetime.datetime]]) -> int:
    """Waiting page views (browsing.py), written through the gate after the response, off the
    request path: the middleware saw each person's browser allow analytics (the consent), and the
    gate refuses a person who restricted processing or was erased since, whose views are dropped.
    The gate decides for every person of the batch in one transaction (one statement reads them
    all), and the allowed rows are multi-row INSERTs (one per BATCH) in that transaction: no model
    instance per row (the write is the hot path's amortised cost)."""
    if not views:
        return 0
    use = gate.Use("downloads.page_views", actor_kind=ActorKind.VISITOR, refused_once=True)
    with _history(gate.Each({view[0] for view in views}), "browsing_history", use) as permits:
        return _insert_page_views([view for view in views if view[0] in permits])


def _insert_page_views(views: Sequence[tuple[uuid.UUID, str, datetime.datetime]]) -> int:
    meta = PageView._meta
    connection = connections[PageView.objects.db]
    columns = ", ".join(connection.ops.quote_name(c) for c in _PAGE_VIEW_COLUMNS)
    native_uuid = connection.features.has_native_uuid_field
    adapt = connection.ops.adapt_datetimefield_value
    rows = [(pid if native_uuid else pid.hex, page[:MAX_PATH], adapt(at)) for pid, page, at in views]
    head = f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) VALUES "  # noqa: S608  # our own table and columns
    with connection.cursor() as cursor:
        for start in range(0, len(rows), browsing.BATCH):
            chunk = rows[start : start + browsing.BATCH]
            cursor.execute(head + ", ".join(["(%s, %s, %s)"] * len(chunk)), [v for row in chunk for v in row])
    return len(rows)


@transaction.atomic(durable=True)
def clear_download_history(person: Person, *, because: str = "cleared") -> int:
    """The holder deletes their download history (``because``: "cleared" by the button, or
    "refused": they no longer allow functional cookies)."""
    deleted, _ = DownloadRecord.objects.filter(person=person).delete()
    record_event(
        EventType.HISTORY_CLEARED,
        actor_kind=ActorKind.VISITOR,
        person=person,
        extra={"history": "downloads", "deleted": deleted, "because": because},
    )
    return deleted


def clear_browsing_history(person: Person, *, because: str = "cleared") -> int:
    browsing.take(person.pk)  # what waits in this process is dropped, not written
    return _clear_page_views(person, because)


@transaction.atomic(durable=True)
def _clear_page_views(person: Person, because: str) -> int:
    deleted, _ = PageView.objects.filter(person=person).delete()
    record_event(
        EventType.HISTORY_CLEARED,
        actor_kind=ActorKind.VISITOR,
        person=person,
        extra={"history": "pages", "deleted": deleted, "because": because},
    )
    return deleted


def forget_refused(person: Person, *, functional: bool, analytics: bool) -> None:
    """A signed-in holder's new cookie choice: the history of each category they now refuse is
    deleted (a withdrawn consent ends the data it covered, PIPL 15 and NDSMR 22)."""
    if not functional and DownloadRecord.objects.filter(person=person).exists():
        clear_download_history(person, because="refused")
    if not analytics and (PageView.objects.filter(person=person).exists() or browsing.take(person.pk)):
        clear_browsing_history(person, because="refused")
