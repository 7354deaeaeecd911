"""Background work for rights requests: thin wrappers around the fulfilment functions."""

from __future__ import annotations

from django.tasks import task

from piwarden.people.models import Person
from piwarden.processing.gate import ProcessingRefused
from piwarden.rights.archive import ArchiveUnavailable, build_archive


@task()
def build_archive_task(person_id: str, reference: str) -> str:
    """Build the archive of a person for the request ``reference``; progress is stored on its row.

    Returns the archive's id, or "refused" when the person was erased (the gate recorded the
    refusal; no archive is left).  Any other failure marks the row failed and fails the task.
    """
    person = Person.objects.get(pk=person_id)
    try:
        archive = build_archive(person, reference=reference, store_progress=True)
    except (ProcessingRefused, ArchiveUnavailable):
        return "refused"
    return str(archive.id)
