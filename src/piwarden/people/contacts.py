"""Everyone we can reach: the people whose contact address an app holds, and how to read it.

A notice that the law says every person must get (the site's cessation, §三(二); a material
change of the policy, §十; an incident, §五.6) has to find every person with a contact address,
whichever app holds it.  Each app that keeps one registers a :class:`Source` here, from its
``personal_data.py`` (beside the exporter and eraser of the category that holds the address), as
the consultation, rights and accounts apps do; an app added later joins by registering its own,
and every notice reaches its people by construction.  The three notices find their people here
and nowhere else: :func:`everyone` (the cessation, a material change), :func:`holding` (an
incident: the persons of whom the affected categories hold data), and :func:`address_of`.

A source says:

* ``people()``: the ids of the persons, not erased, whose address it holds (streamed: a site may
  hold a million);
* ``address(person)``: the address to write to and the person's language (their newest), read
  inside the caller's permit from the gate (the ``category`` is what the gate is asked about);
  None when the source holds none for this person any more.

Nothing here sends anything: the notice's app decides what to send, once per person (a person
known to several sources is one person: one notice).

How each notice is sent, once per person, is :mod:`piwarden.people.notices`: the cessation
(:class:`~piwarden.cessation.models.CessationNotice`), the material change
(:class:`~piwarden.revisions.models.ChangeNotice`) and the incident
(:class:`~piwarden.incidents.models.Notice`) each keep their notice rows, one per (subject, person),
and declare what is their own (whom, the message, how a row ends and its audit event, the crash
rule); one function runs the cycle for all three.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from django.apps import apps
from django.db.models import Model

from piwarden.people.models import Person
from piwarden.people.registry import Subject, handlers
from piwarden.policy.declaration import load_declaration


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


def everyone() -> Iterator[uuid.UUID]:
    """The ids of every person, not erased, a source holds an address of, source by source (streamed:
    a person known to several sources comes once per source; the caller's notice row is unique per
    person, so it makes one of each)."""
    for source in _sources.values():
        yield from source.people()


def person_categories() -> list[str]:
    """The declared categories about visitors that can choose persons (their fields name models)."""
    registered = handlers()
    return [
        c.id
        for c in load_declaration().categories
        if c.fields and c.id in registered and registered[c.id].subject is Subject.VISITOR
    ]


def holding(categories: Collection[str]) -> set[uuid.UUID]:
    """The ids of the persons, not erased, of whom any of ``categories`` holds a row (an incident's
    persons affected).  A category's declared fields name the models that store it; a model that
    belongs to a person (``PersonalData``, or the person row itself) gives their random ids, without
    decrypting anything.  A category stored in files, or about staff or nobody, chooses nobody."""
    wanted = set(categories) & set(person_categories())
    models: set[type[Model]] = set()
    for category in load_declaration().categories:
        if category.id in wanted:
            for name in category.fields:
                app_label, model_name, _field = name.split(".")
                models.add(apps.get_model(app_label, model_name))
    living = Person.objects.filter(erased_at__isnull=True)
    found: set[uuid.UUID] = set()
    for model in models:
        if model is Person:
            found.update(living.values_list("id", flat=True))
        elif any(f.name == "person" and f.is_relation for f in model._meta.get_fields()):
            holders = model._default_manager.values("person_id")
            found.update(living.filter(id__in=holders).values_list("id", flat=True))
    return found


def address_of(person: Person) -> Address | None:
    """The person's address from the first source that holds one (call it inside the gate's permit)."""
    for source in _sources.values():
        found = source.address(person)
        if found is not None:
            return found
    return None
