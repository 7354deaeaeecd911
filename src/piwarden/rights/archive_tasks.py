"""The archive's build as a task (rights-archive's ``build_archive_task``), apart from rights.tasks.

rights.archive uses rights.actions, and rights.actions queues the e-mail tasks of rights.tasks: a
task in rights.tasks that builds the archive closed an import cycle (merge into rights-queue).  The
staff queue's completion of an access or copy request queues it through the hook this module
registers with :mod:`piwarden.rights.fulfil` (``RightsConfig.ready``).
"""

from __future__ import annotations

from django.tasks import task

from piwarden.people.models import person_by_id
from piwarden.prepared import prepare_enqueue
from piwarden.processing.gate import ProcessingRefused
from piwarden.rights.archive import ArchiveUnavailable, build_archive
from piwarden.rights.models import RightsRequest


@task()
def build_archive_task(person_id: str, reference: str) -> str:
    """Build the archive of a person for the request ``reference``; progress is stored on its row.

    Returns the archive's id, or "refused" when the person was erased (the gate recorded the
    refusal; no archive is left).  Any other failure marks the row failed and fails the task.
    """
    person = person_by_id(person_id)
    try:
        archive = build_archive(person, reference=reference, store_progress=True)
    except (ProcessingRefused, ArchiveUnavailable):
        return "refused"
    return str(archive.id)


def queue_archive(request: RightsRequest) -> None:
    """The completion's hook (in its transaction): build the archive that answers ``request``."""
    prepare_enqueue(build_archive_task, str(request.record_id), request.reference).run()  # as .enqueue()
