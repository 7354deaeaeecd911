"""What this app stores about a person, exported and erased (``piwarden.people.registry``).

* ``consultation``: the requests' personal fields, decrypted, one request at a time; erasure
  deletes the request rows (their submission time and language, declared in
  ``person_lifecycle``, go with them).
* correction: each personal field of a request may be corrected (``correctable``), checked by
  the consultation form's own field and written to every request of the person; the e-mail and
  phone number are the Person's look-up keys, whose blind indexes are recomputed.
* ``queued_tasks``: the background jobs that worked on the person's requests (django-tasks-db
  names the request by its id in the job's arguments); erasure deletes those that are not
  running (a running one finishes and is pruned after its declared retention).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import connection
from django.db.models import CharField, QuerySet, UUIDField
from django.db.models.expressions import RawSQL
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from piwarden.inquiries.forms import ConsultationForm
from piwarden.inquiries.models import CATEGORY, PERSONAL_FIELDS, Inquiry
from piwarden.people.contacts import Address, Source, register_contacts
from piwarden.people.models import Person
from piwarden.people.registry import (
    Correctable,
    Counts,
    Deletes,
    Index,
    Record,
    Subject,
    delete_counted,
    keys,
    register,
    register_correctable,
)
from piwarden.prepared import Param, Params, PreparedSelect
from piwarden.processing.gate import Permit
from piwarden.vault.fields import EncryptedTextField, open_value

CHUNK = 200  # rows per database round trip when streaming


def _requests(person: Person) -> QuerySet[Inquiry]:
    return Inquiry.objects.filter(person=person).order_by("submitted_at", "id")


_SEALED = tuple(f for f in Inquiry._meta.concrete_fields if isinstance(f, EncryptedTextField))  # PERSONAL_FIELDS
_EXPORTED = PreparedSelect(
    lambda: (
        Inquiry.objects.filter(person_id=Param("person", UUIDField()))
        .order_by("submitted_at", "id")
        .values_list(
            "id", "data_key_id", "reference", "submitted_at", "language", "product", "status", *PERSONAL_FIELDS
        )
    )
)


def export_consultation(permit: Permit) -> Iterator[Record]:
    for pk, key, reference, submitted_at, language, product, status, *sealed in _EXPORTED.rows(
        person=permit.person.pk, chunk=CHUNK
    ):
        yield {
            "reference": reference,
            "submitted_at": submitted_at.isoformat(),
            "language": language,
            "product": product,
            "status": status,
            **{f.name: open_value(f, pk, key, value) for f, value in zip(_SEALED, sealed, strict=True)},
        }


def erase_consultation(people: Sequence[Person]) -> Counts:
    return delete_counted(Inquiry.objects.filter(person_id__in=keys(people)), "person")


def _first_argument() -> RawSQL:
    """A task's first argument, spelled as the expression index of migration 0004 spells it, so
    that looking up a request's tasks reads that index instead of the whole task table (the
    task model is django-tasks-db's: an expression index needs no column of ours in it)."""
    column = f"{connection.ops.quote_name(DBTaskResult._meta.db_table)}.{connection.ops.quote_name('args_kwargs')}"
    if connection.vendor == "postgresql":
        return RawSQL(f"(({column} -> 'args') ->> 0)", (), output_field=CharField())  # noqa: S611  # names only
    return RawSQL(f"json_extract({column}, '$.args[0]')", (), output_field=CharField())  # noqa: S611


_REQUEST_IDS = PreparedSelect(
    lambda: (
        Inquiry.objects.filter(person_id=Param("person", UUIDField())).order_by("submitted_at", "id").values_list("id")
    )
)
_TASKS = PreparedSelect(
    lambda: _tasks_naming(Params("ids", CharField())).values_list(
        "task_path", "status", "enqueued_at", "finished_at", "exception_class_path"
    )
)


def _tasks_streamed(person: Person) -> Iterator[tuple[Any, ...]]:
    """The tasks of the person's requests, a chunk of requests at a time (a person may have
    100 000 requests: neither their ids nor one query naming them all is held at once)."""
    chunk: list[str] = []
    for (pk,) in _REQUEST_IDS.rows(person=person.pk, chunk=CHUNK):
        chunk.append(str(pk))
        if len(chunk) == CHUNK:
            yield from _TASKS.rows(ids=chunk, chunk=CHUNK)
            chunk = []
    if chunk:
        yield from _TASKS.rows(ids=chunk, chunk=CHUNK)


def _tasks_naming(ids: list[str] | Params) -> QuerySet[DBTaskResult[Any, Any]]:
    return (
        DBTaskResult.objects.alias(first_argument=_first_argument())
        .filter(first_argument__in=ids, task_path__startswith="piwarden.inquiries.tasks.")
        .order_by("enqueued_at", "id")
    )


def export_tasks(permit: Permit) -> Iterator[Record]:
    for task_path, status, enqueued_at, finished_at, error in _tasks_streamed(permit.person):
        yield {
            "task": task_path.rsplit(".", 1)[-1],
            "status": status,
            "enqueued_at": enqueued_at.isoformat(),
            "finished_at": finished_at.isoformat() if finished_at else None,
            "error": error or None,
        }


def erase_tasks(people: Sequence[Person]) -> Counts:
    owner = {
        str(pk): person for pk, person in Inquiry.objects.filter(person_id__in=keys(people)).values_list("id", "person")
    }
    if not owner:
        return {}
    tasks = _tasks_naming(list(owner)).exclude(status=TaskResultStatus.RUNNING)
    found = list(tasks.annotate(request=_first_argument()).values_list("pk", "request"))
    if not found:
        return {}
    DBTaskResult.objects.filter(pk__in=[pk for pk, _ in found]).delete()
    return Counter(owner[request] for _, request in found)


register(
    CATEGORY,
    subject=Subject.VISITOR,
    export=export_consultation,
    erase=Deletes.people(erase_consultation),
    module=__name__,
)
# Declared after consultation, so erased before it (erasers run last-declared first): the tasks are
# found through the request rows, which the consultation eraser deletes.
register(
    "queued_tasks", subject=Subject.VISITOR, export=export_tasks, erase=Deletes.people(erase_tasks), module=__name__
)


def _clean(name: str) -> Callable[[str], str]:
    def clean(value: str) -> str:
        # A fresh form: its choice fields get their choices (in the active language) per instance.
        return str(ConsultationForm().fields[name].clean(value))

    return clean


def _apply(name: str) -> Callable[[Person, str], tuple[int, int]]:
    def apply(person: Person, value: str) -> tuple[int, int]:
        changed = unchanged = 0
        for inquiry in _requests(person).select_for_update():
            if getattr(inquiry, name) == value:
                unchanged += 1
                continue
            setattr(inquiry, name, value)
            inquiry.save(update_fields=[name])  # each row sealed under its own associated data
            changed += 1
        return changed, unchanged

    return apply


_INDEXES = {"email": Index.EMAIL, "phone": Index.PHONE}
for _name in PERSONAL_FIELDS:
    register_correctable(
        Correctable(
            field=f"inquiries.Inquiry.{_name}",
            category=CATEGORY,
            clean=_clean(_name),
            apply=_apply(_name),
            index=_INDEXES.get(_name),
        )
    )


# --- whom a notice to everyone reaches (piwarden.people.contacts) ------------------------------


def _requesters() -> Iterator[uuid.UUID]:
    """The persons, not erased, with a consultation request held (their address is in it)."""
    found = Inquiry.objects.filter(person__erased_at__isnull=True).values_list("person_id", flat=True)
    yield from found.distinct().order_by("person_id").iterator(chunk_size=CHUNK)


def _address(person: Person) -> Address | None:
    """The address and language of the person's newest request (read inside the caller's permit)."""
    newest = _requests(person).only("id", "data_key_id", "email", "language").last()
    if newest is None or newest.email is None:
        return None
    return Address(email=newest.email, language=newest.language)


register_contacts(Source(name="consultation", category=CATEGORY, people=_requesters, address=_address, module=__name__))
