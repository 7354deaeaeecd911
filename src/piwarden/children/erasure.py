"""The erasure of a child's data that no guardian consented to (policy §八.3; law CHD-04).

A write path of its own module, apart from ``children.actions`` (which queues the task that runs
it, ``children.tasks.erase_child_data``), so that the imports run one way.  It records no event of
its own: ``people.actions.shred_person`` records the erasure (``person.shredded``, with
:data:`ERASURE_REASON` and the counts per category), and the flag or the refusal that called for
it is recorded by its own write path.
"""

from __future__ import annotations

from django.db import transaction

from piwarden.children.models import ChildMark
from piwarden.people.actions import shred_person
from piwarden.people.models import Person
from piwarden.people.registry import Subject, erase_categories
from piwarden.policy.declaration import load_declaration

ERASURE_REASON = "Child's data collected without a guardian's consent (policy §8): deleted promptly"


@transaction.atomic(durable=True)
def erase_unconsented_child_data(person_id: str) -> bool:
    """Erase a child's data that no guardian consented to (flagged, or refused by the guardian).

    Every category's eraser, then the crypto-shredding (key destroyed, indexes cleared, sealed
    mail deleted, the erasure ledger), recorded as ``person.shredded`` with :data:`ERASURE_REASON`.
    Returns False when there is nothing to do: erased already, no longer marked, or a guardian
    consented meanwhile.  Raises what ``shred_person`` raises (``LedgerUnavailable``): the task
    tries again later.
    """
    locked = Person.objects.select_for_update().filter(pk=person_id).first()
    if locked is None or locked.is_erased:
        return False
    mark = ChildMark.objects.filter(person=locked).first()
    if mark is None or mark.guardian_consented_at is not None or mark.erasure_due_at is None:
        return False
    counts = erase_categories(locked, load_declaration(), Subject.VISITOR)
    return shred_person(locked, reason=ERASURE_REASON, erased=counts, reference="children")
