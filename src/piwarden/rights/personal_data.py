"""The archives of access and copy requests, exported and erased (``piwarden.people.registry``).

``rights_archives``: the rows say which archives were prepared for the person, when, for which
request, and whether they were downloaded; the archives themselves are not exported again (each
is a copy of the rest).  Erasure deletes the rows and, once the erasure has committed, the sealed
files: they are encrypted under the person's data key, which the same erasure destroys, so a file
left by a crash in between cannot be opened, and the retention sweep deletes files without a row.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from django.db import transaction
from django.db.models import Q

from piwarden.people.models import Person
from piwarden.people.registry import Deletes, Record, Subject, register
from piwarden.processing.gate import Permit
from piwarden.rights import sealing
from piwarden.rights.actions import ARCHIVE_CATEGORY
from piwarden.rights.models import Archive

ORPHAN_AFTER = datetime.timedelta(hours=1)


def export_archives(permit: Permit) -> Iterator[Record]:
    for archive in Archive.objects.filter(person=permit.person).order_by("created_at", "id"):
        yield {
            "archive": str(archive.id),
            "reference": archive.reference,
            "status": archive.status,
            "created_at": archive.created_at.isoformat(),
            "expires_at": archive.expires_at.isoformat(),
            "size": archive.size,
            "sha256": archive.sha256 or None,
            "downloaded_at": archive.downloaded_at.isoformat() if archive.downloaded_at else None,
        }


def delete_archives(person: Person) -> int:
    ids = list(Archive.objects.filter(person=person).values_list("id", flat=True))
    deleted, _ = Archive.objects.filter(pk__in=ids).delete()
    transaction.on_commit(lambda: sealing.delete_files(ids))
    return deleted


def delete_expired_archives(cutoff: datetime.datetime, now: datetime.datetime) -> int:
    """For the retention sweep (in its transaction): delete the archives that expired by ``now`` or
    were prepared before ``cutoff``, their files once the sweep commits, and files without a row
    (left by a crash, or by an erasure during a build) unchanged for an hour.

    Returns the rows plus the orphan files deleted."""
    expired = Archive.objects.filter(Q(expires_at__lte=now) | Q(created_at__lte=cutoff))
    ids = list(expired.values_list("id", flat=True))
    deleted, _ = Archive.objects.filter(pk__in=ids).delete()
    transaction.on_commit(lambda: sealing.delete_files(ids))
    # A file being written has no row only if its build lost the row (erasure): left an hour first,
    # so that a build whose row this transaction cannot see yet is not cut off.
    stored = sealing.stored_ids(unchanged_since=(now - ORPHAN_AFTER).timestamp())
    orphans = stored - set(Archive.objects.filter(pk__in=stored).values_list("id", flat=True)) - set(ids)
    return deleted + sealing.delete_files(orphans)


register(
    ARCHIVE_CATEGORY,
    subject=Subject.VISITOR,
    export=export_archives,
    erase=Deletes(delete_archives),
    module=__name__,
)
