"""Where the guardians of a minor are found: a hook the children's app fills.

PIPL 31 and the Minors' Network Protection Regulations (Art 35, CHD-06) ask that, when a minor's
personal information is involved in an incident, their guardians are told too; and a guardian may
exercise the child's rights (PIPL 31), once we know they are one.  Which persons are minors, and
their guardians' addresses, belong to the app that runs the age gate and the guardian's consent
(:mod:`piwarden.children`); this module only asks it, for the incidents' notices
(:mod:`piwarden.incidents.mail`) and the rights requests a guardian makes
(``piwarden.rights.fulfil._require_guardian``).  That app registers one
:class:`GuardianSource` at start-up, from its ``personal_data.py``
(:class:`piwarden.children.personal_data.Guardians`)::

    from piwarden.people.guardians import register_guardian_source
    register_guardian_source(Guardians())

* ``minors(person_ids)`` answers which of these persons are marked as children (no decryption:
  the mark is a row of its own);
* ``addresses(permit)`` reads the guardians' addresses of the minor ``permit.person`` inside the
  processing gate's use (the categories it reads must list the caller's purpose: ``incident_notice``
  for a notice, the rights requests' purpose for a guardian's request).

Whenever any person chosen for an incident's notice is a minor, a notice to their guardians is
queued too (:func:`piwarden.incidents.actions.notify_persons`), whatever count of minors the
officer entered.  Without a source (a deployment without the children's app), :func:`source` is
None: the register says that guardians cannot be e-mailed, the notices' audit record says so, and
the officer publishes the public notice (MinorsReg 35: where notice one by one is impractical, a
public warning).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from piwarden.processing.gate import Permit


class GuardianSource(Protocol):
    # The categories ``addresses`` reads, for the gate (each must list the purposes of the callers).
    categories: Collection[str]

    def minors(self, person_ids: Collection[uuid.UUID]) -> set[uuid.UUID]: ...

    def addresses(self, permit: Permit) -> list[str]: ...


_source: list[GuardianSource] = []


def register_guardian_source(found: GuardianSource) -> None:
    """Install the one source of guardians (a second replaces the first: tests install their own)."""
    _source[:] = [found]


def unregister_guardian_source() -> None:
    _source.clear()


def source() -> GuardianSource | None:
    return _source[0] if _source else None
