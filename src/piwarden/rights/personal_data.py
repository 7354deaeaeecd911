"""What the rights app stores about a person, exported and erased (``piwarden.people.registry``).

* ``rights_requests``: what the person wrote in each request (the e-mail given, the details),
  our answers (the result or the refusal's reasons, an extension's explanation, each step's
  note), decrypted; and the one-time codes still waiting to be e-mailed (never exported: a code
  is a key to the request, not data about the person).  Erasure is :class:`Shredded`: the
  values are sealed under the person's data key, which the erasure destroys, so they become
  unreadable where they lie; the rows stay, because:
* ``rights_request_records``: the kind, state and dates of each request and of its steps are
  :class:`Keeps`: they are the proof that a request (the erasure request among them) was received
  and answered on time, with the reasons of a refusal (PIPL 50); they hold no value of the
  person's, and they are deleted three years after the request closed, as declared.

The archives of access and copy requests (rights-archive):

``rights_archives``: the rows say which archives were prepared for the person, when, for which
request, and whether they were downloaded; the archives themselves are not exported again (each
is a copy of the rest).  Erasure deletes the rows and, once the erasure has committed, the sealed
files: they are encrypted under the person's data key, which the same erasure destroys, so a file
left by a crash in between cannot be opened, and the retention sweep deletes files without a row.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_noop

from piwarden.people.models import Person
from piwarden.people.registry import Deletes, Keeps, Record, Shredded, Subject, register
from piwarden.processing.gate import Permit
from piwarden.rights import sealing
from piwarden.rights.actions import ARCHIVE_CATEGORY
from piwarden.rights.models import Archive, RequestStep, RightsRequest

CHUNK = 200  # rows per database round trip when streaming


def _requests(person: Person) -> QuerySet[RightsRequest]:
    return RightsRequest.objects.filter(person=person).order_by("submitted_at", "id")


def _day(value: object) -> str | None:
    return value.isoformat() if value is not None else None  # type: ignore[attr-defined]  # date or datetime


def _with_steps(person: Person, *step_fields: str) -> Iterator[tuple[RightsRequest, list[RequestStep]]]:
    """The person's requests, each with its steps in order: a query of steps per chunk of requests
    (as ``prefetch_related`` does, without its machinery: half a millisecond of a typical export)."""
    chunk: list[RightsRequest] = []
    for request in _requests(person).iterator(chunk_size=CHUNK):
        chunk.append(request)
        if len(chunk) == CHUNK:
            yield from _joined(chunk, step_fields)
            chunk = []
    if chunk:
        yield from _joined(chunk, step_fields)


def _joined(
    requests: list[RightsRequest], step_fields: tuple[str, ...]
) -> Iterator[tuple[RightsRequest, list[RequestStep]]]:
    steps: dict[Any, list[RequestStep]] = {request.pk: [] for request in requests}
    rows = RequestStep.objects.filter(request__in=list(steps)).order_by("at", "id")
    for step in rows.only("request_id", *step_fields):
        steps[step.request_id].append(step)
    for request in requests:
        yield request, steps[request.pk]


def export_requests(permit: Permit) -> Iterator[Record]:
    for request, steps in _with_steps(permit.person, "at", "note", "data_key_id", "person_id"):
        yield {
            "reference": request.reference,
            "email": request.email,
            "details": request.details,
            "extension_reason": request.extension_reason,
            "outcome": request.outcome,
            "notes": [{"at": step.at.isoformat(), "note": step.note} for step in steps if step.note],
        }


def export_records(permit: Permit) -> Iterator[Record]:
    for request, steps in _with_steps(permit.person, "at", "status"):
        yield {
            "reference": request.reference,
            "kind": request.kind,
            "acting_as": request.acting_as,
            "status": request.status,
            "language": request.language,
            "submitted_at": _day(request.submitted_at),
            "verified_at": _day(request.verified_at),
            "received_on": _day(request.received_on),
            "due_on": _day(request.due_on),
            "due_provisional": request.due_provisional,
            "extended_due_on": _day(request.extended_due_on),
            "decided_at": _day(request.decided_at),
            "refusal_ground": request.refusal_ground,
            "completed_at": _day(request.completed_at),
            "receipt_sent_at": _day(request.receipt_sent_at),
            "steps": [{"at": step.at.isoformat(), "status": step.status} for step in steps],
        }


register(
    "rights_requests",
    subject=Subject.VISITOR,
    export=export_requests,
    erase=Shredded(
        gettext_noop(
            "What you wrote in your requests and our answers are sealed under your data key, which is destroyed: "
            "they become unreadable; the request rows stay as proof that they were answered."
        )
    ),
    module=__name__,
)
register(
    "rights_request_records",
    subject=Subject.VISITOR,
    export=export_records,
    erase=Keeps(
        gettext_noop(
            "The kind, state and dates of your requests are the proof that we received and answered them (PIPL 50), "
            "this erasure among them; they hold none of your values and are deleted three years after closing."
        )
    ),
    module=__name__,
)


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
