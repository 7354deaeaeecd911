"""The visitor's histories, exported and erased (``piwarden.people.registry``).

Both are the person's own convenience, kept by their cookie choice: exported in full, and deleted
on erasure (nothing requires keeping them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.db.models import QuerySet

from piwarden.downloads.models import DownloadRecord, PageView
from piwarden.people.models import Person
from piwarden.people.registry import Counts, Deletes, Record, Subject, Whose, delete_counted, keys, register
from piwarden.processing.gate import Permit

CHUNK = 500


def downloads(person: Whose) -> QuerySet[DownloadRecord]:
    return DownloadRecord.objects.filter(person=person)


def page_views(person: Whose) -> QuerySet[PageView]:
    return PageView.objects.filter(person=person)


def export_downloads(permit: Permit) -> Iterator[Record]:
    rows = (
        downloads(permit.person)
        .order_by("downloaded_at", "id")
        .values_list("resource__title_zh", "resource__title_en", "resource__filename", "downloaded_at")
    )
    for title_zh, title_en, filename, at in rows.iterator(chunk_size=CHUNK):
        yield {"title_zh": title_zh, "title_en": title_en, "file": filename, "downloaded_at": at.isoformat()}


def erase_downloads(people: Sequence[Person]) -> Counts:
    return delete_counted(DownloadRecord.objects.filter(person_id__in=keys(people)), "person")


def export_page_views(permit: Permit) -> Iterator[Record]:
    rows = page_views(permit.person).order_by("viewed_at", "id").values_list("path", "viewed_at")
    for path, at in rows.iterator(chunk_size=CHUNK):
        yield {"page": path, "viewed_at": at.isoformat()}


def erase_page_views(people: Sequence[Person]) -> Counts:
    return delete_counted(PageView.objects.filter(person_id__in=keys(people)), "person")


register(
    "download_history",
    subject=Subject.VISITOR,
    export=export_downloads,
    erase=Deletes.people(erase_downloads),
    module=__name__,
    rows=downloads,
)
register(
    "browsing_history",
    subject=Subject.VISITOR,
    export=export_page_views,
    erase=Deletes.people(erase_page_views),
    module=__name__,
    rows=page_views,
)
