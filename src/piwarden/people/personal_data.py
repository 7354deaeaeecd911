"""What the people app stores about a person, exported and erased (``piwarden.people.registry``).

* ``identifiers``: the blind indexes of the person's e-mail and phone number.  They are
  exported as they are stored (keyed digests: the values they stand for are in the
  consultation category); erasure clears them as part of the crypto-shredding.
* ``person_lifecycle``: when the person's record was created, restricted, erased.  The Person
  row is kept: it anchors the audit trail and records that (and when) the erasure happened; it
  holds timestamps only.  The submission time and language of each request, declared here too,
  are deleted with the request rows by the consultation eraser.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.utils.translation import gettext_noop

from piwarden.people.registry import Keeps, Record, Shredded, Subject, register
from piwarden.processing.gate import Permit


def export_identifiers(permit: Permit) -> Iterator[Record]:
    person = permit.person
    yield {"email_index": person.email_index, "phone_index": person.phone_index}


def export_lifecycle(permit: Permit) -> Iterator[Record]:
    person = permit.person
    yield {
        "created_at": person.created_at.isoformat(),
        "restricted_at": person.restricted_at.isoformat() if person.restricted_at else None,
        "erased_at": person.erased_at.isoformat() if person.erased_at else None,
    }


register(
    "identifiers",
    subject=Subject.VISITOR,
    export=export_identifiers,
    erase=Shredded(gettext_noop("The look-up digests of your e-mail address and phone number are cleared.")),
    module=__name__,
)
register(
    "person_lifecycle",
    subject=Subject.VISITOR,
    export=export_lifecycle,
    erase=Keeps(
        gettext_noop(
            "The Person row (timestamps only, no identifying value) anchors the audit trail and records the "
            "erasure itself; the requests' submission times and languages go with the request rows."
        )
    ),
    module=__name__,
)
