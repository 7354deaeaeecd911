"""Everyone we can reach: the people whose contact address an app holds, and how to read it.

A notice that the law says every person must get (the site's cessation, §三(二); a material
change of the policy, §十; an incident, §五.6) has to find every person with a contact address,
whichever app holds it.  Each app that keeps one registers a :class:`Source` here, from its
``personal_data.py`` (beside the exporter and eraser of the category that holds the address), as
the consultation and rights apps do; an app added later (visitor accounts) joins by registering
its own, and every notice reaches its people by construction.

A source says:

* ``people()``: the ids of the persons, not erased, whose address it holds (streamed: a site may
  hold a million);
* ``address(person)``: the address to write to and the person's language (their newest), read
  inside the caller's permit from the gate (the ``category`` is what the gate is asked about);
  None when the source holds none for this person any more.

Nothing here sends anything: the notice's app decides what to send, once per person (a person
known to several sources is one person: one notice).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from piwarden.people.models import Person


@dataclass(frozen=True)
class Address:
    email: str
    language: str


@dataclass(frozen=True)
class Source:
    name: str
    category: str  # the declared category that holds the address (asked of the gate)
    people: Callable[[], Iterator[uuid.UUID]]
    address: Callable[[Person], Address | None]
    module: str


_sources: dict[str, Source] = {}


def register_contacts(source: Source) -> None:
    """Called from an app's ``personal_data.py``."""
    if source.name in _sources:
        raise ValueError(f"contact source {source.name!r} is registered twice ({_sources[source.name].module})")
    _sources[source.name] = source


def sources() -> list[Source]:
    """Every registered source, in registration order (the order an address is looked for)."""
    return list(_sources.values())


def categories() -> set[str]:
    """The categories a notice to everyone reads an address from (what the gate is asked about)."""
    return {s.category for s in _sources.values()}


def address_of(person: Person) -> Address | None:
    """The person's address from the first source that holds one (call it inside the gate's permit)."""
    for source in _sources.values():
        found = source.address(person)
        if found is not None:
            return found
    return None
