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
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Q, UUIDField
from django.utils.translation import gettext_noop

from piwarden.people.contacts import Address, Source, register_contacts
from piwarden.people.models import Person
from piwarden.people.registry import Counts, Deletes, Keeps, Record, Shredded, Subject, keys, register
from piwarden.prepared import Param, Params, PreparedSelect
from piwarden.processing.gate import Permit
from piwarden.rights import sealing
from piwarden.rights.actions import ARCHIVE_CATEGORY
from piwarden.rights.models import Archive, RequestStep, RightsRequest
from piwarden.vault.fields import encrypted_field, open_value

CHUNK = 200  # rows per database round trip when streaming


def _day(value: object) -> str | None:
    return value.isoformat() if value is not None else None  # type: ignore[attr-defined]  # date or datetime


_EMAIL, _DETAILS, _EXTENSION, _OUTCOME = (
    encrypted_field(RightsRequest, name) for name in ("email", "details", "extension_reason", "outcome")
)
_NOTE = encrypted_field(RequestStep, "note")
_RECORD_COLUMNS = (
    "kind",
    "acting_as",
    "status",
    "language",
    "submitted_at",
    "verified_at",
    "received_on",
    "due_on",
    "due_provisional",
    "extended_due_on",
    "decided_at",
    "refusal_ground",
    "completed_at",
    "receipt_sent_at",
)
_AS_STORED = {"kind", "acting_as", "status", "language", "due_provisional", "refusal_ground"}  # the rest are dates


def _requests_of(*columns: str) -> PreparedSelect:
    return PreparedSelect(
        lambda: (
            RightsRequest.objects.filter(person_id=Param("person", UUIDField()))
            .order_by("submitted_at", "id")
            .values_list("id", *columns)
        )
    )


def _steps_of(*columns: str) -> PreparedSelect:
    return PreparedSelect(
        lambda: (
            RequestStep.objects.filter(request_id__in=Params("requests", UUIDField()))
            .order_by("at", "id")
            .values_list("request_id", *columns)
        )
    )


_WRITTEN = _requests_of("data_key_id", "reference", "email", "details", "extension_reason", "outcome")
_NOTES = _steps_of("id", "data_key_id", "at", "note")
_RECORDS = _requests_of("reference", *_RECORD_COLUMNS)
_STATES = _steps_of("at", "status")


def _with_steps(
    person: Person, requests: PreparedSelect, steps: PreparedSelect
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """The person's requests (rows of ``requests``), each with its steps in order (rows of ``steps``,
    less the request's id): a query of steps per chunk of requests, as ``prefetch_related`` does."""
    chunk: list[tuple[Any, ...]] = []
    for request in requests.rows(person=person.pk, chunk=CHUNK):
        chunk.append(request)
        if len(chunk) == CHUNK:
            yield from _joined(chunk, steps)
            chunk = []
    if chunk:
        yield from _joined(chunk, steps)


def _joined(
    requests: list[tuple[Any, ...]], steps: PreparedSelect
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    found: dict[Any, list[tuple[Any, ...]]] = {request[0]: [] for request in requests}
    for request_id, *step in steps.rows(requests=list(found), chunk=CHUNK):
        found[request_id].append(tuple(step))
    for request in requests:
        yield request, found[request[0]]


def export_requests(permit: Permit) -> Iterator[Record]:
    for (pk, key, reference, email, details, extension, outcome), steps in _with_steps(permit.person, _WRITTEN, _NOTES):
        notes = ((at, open_value(_NOTE, step_pk, step_key, note)) for step_pk, step_key, at, note in steps)
        yield {
            "reference": reference,
            "email": open_value(_EMAIL, pk, key, email),
            "details": open_value(_DETAILS, pk, key, details),
            "extension_reason": open_value(_EXTENSION, pk, key, extension),
            "outcome": open_value(_OUTCOME, pk, key, outcome),
            "notes": [{"at": at.isoformat(), "note": note} for at, note in notes if note],
        }


def export_records(permit: Permit) -> Iterator[Record]:
    for (_, reference, *values), steps in _with_steps(permit.person, _RECORDS, _STATES):
        record: dict[str, Any] = {"reference": reference}
        for name, value in zip(_RECORD_COLUMNS, values, strict=True):
            record[name] = value if name in _AS_STORED else _day(value)
        record["steps"] = [{"at": at.isoformat(), "status": status} for at, status in steps]
        yield record


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


_ARCHIVES = PreparedSelect(
    lambda: (
        Archive.objects.filter(person_id=Param("person", UUIDField()))
        .order_by("created_at", "id")
        .values_list("id", "reference", "status", "created_at", "expires_at", "size", "sha256", "downloaded_at")
    )
)


def export_archives(permit: Permit) -> Iterator[Record]:
    for pk, reference, status, created_at, expires_at, size, sha256, downloaded_at in _ARCHIVES.rows(
        person=permit.person.pk, chunk=CHUNK
    ):
        yield {
            "archive": str(pk),
            "reference": reference,
            "status": status,
            "created_at": created_at.isoformat(),
            "expires_at": expires_at.isoformat(),
            "size": size,
            "sha256": sha256 or None,
            "downloaded_at": downloaded_at.isoformat() if downloaded_at else None,
        }


def delete_archives(people: Sequence[Person]) -> Counts:
    found = list(Archive.objects.filter(person_id__in=keys(people)).values_list("id", "person"))
    if not found:
        return {}
    ids = [pk for pk, _ in found]
    Archive.objects.filter(pk__in=ids).delete()
    transaction.on_commit(lambda: sealing.delete_files(ids))
    return Counter(person for _, person in found)


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
    erase=Deletes.people(delete_archives),
    module=__name__,
)


# --- whom a notice to everyone reaches (piwarden.people.contacts) ------------------------------


def _requesters() -> Iterator[uuid.UUID]:
    """The persons, not erased, who confirmed the address of a rights request (a code typed back):
    an address never confirmed may be someone else's, and is deleted within a day anyway."""
    confirmed = RightsRequest.objects.filter(verified_at__isnull=False, person__erased_at__isnull=True)
    yield from confirmed.values_list("person_id", flat=True).distinct().order_by("person_id").iterator(chunk_size=CHUNK)


def _address(person: Person) -> Address | None:
    """The address and language of the person's newest confirmed request (inside the caller's permit)."""
    newest = (
        RightsRequest.objects.filter(person=person, verified_at__isnull=False)
        .order_by("verified_at", "id")
        .only("id", "data_key_id", "email", "language")
        .last()
    )
    if newest is None or newest.email is None:
        return None
    return Address(email=newest.email, language=newest.language)


register_contacts(
    Source(name="rights_requests", category="rights_requests", people=_requesters, address=_address, module=__name__)
)
