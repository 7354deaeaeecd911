"""What the incident register reads, and for whom.

Only a role declared with ``handle_incidents`` opens the register (the privacy officer and the
security auditor); another is refused as the audit log refuses
(:func:`piwarden.staff.access.refuse_opening`: an audited 404).  The register holds no personal
value (counts, categories, staff's words about systems), so opening it is not itself recorded;
every change is, by :mod:`piwarden.incidents.actions`.

The persons affected by an incident are chosen by the declared categories it touched: a category's
fields name the models that store it, and a model that belongs to a person (``PersonalData``, or
the person row itself) gives their random ids, without decrypting anything
(:func:`persons_holding`).  A category stored in files, or about staff or nobody, chooses nobody:
the officer lists those persons' addresses instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import NoReturn

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, QuerySet
from django.utils.translation import gettext_noop

from piwarden.incidents.models import Incident
from piwarden.people.models import Person
from piwarden.people.registry import Subject, handlers
from piwarden.policy.declaration import load_declaration
from piwarden.staff import permissions
from piwarden.staff.access import refuse_opening

PAGE_SIZE = 50


def may_handle(user: AbstractBaseUser | AnonymousUser) -> bool:
    return permissions.may(user, permissions.Capability.HANDLE_INCIDENTS)


def refuse_unless_handler(user: AbstractBaseUser | AnonymousUser, page: str, *, about: str = "") -> None:
    if not may_handle(user):
        _refuse(user, page, about=about)


def _refuse(user: AbstractBaseUser | AnonymousUser, page: str, *, about: str = "") -> NoReturn:
    refuse_opening(user, page, gettext_noop("the role may not keep the incident register"), about=about)


def list_incidents(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Incident]:
    refuse_unless_handler(user, "incidents")
    return Incident.objects.all()


def open_incident(user: AbstractBaseUser | AnonymousUser, slug: str, *, page: str = "incident") -> Incident:
    """One incident, for the roles that keep the register; another role, or no such incident, a 404 (recorded)."""
    refuse_unless_handler(user, page, about=slug)
    incident = Incident.objects.filter(slug=slug).first()
    if incident is None:
        _refuse(user, page, about=slug)
    return incident


def published_incident(slug: str) -> Incident | None:
    """The incident whose public notice is published, for the public page (anyone may read it)."""
    return Incident.objects.filter(slug=slug, published_at__isnull=False).first()


def person_categories() -> list[str]:
    """The declared categories about visitors that can choose persons (their fields name models)."""
    registered = handlers()
    return [
        c.id
        for c in load_declaration().categories
        if c.fields and c.id in registered and registered[c.id].subject is Subject.VISITOR
    ]


def persons_holding(categories: Collection[str]) -> set[uuid.UUID]:
    """The ids of the persons, not erased, of whom any of ``categories`` holds a row."""
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
