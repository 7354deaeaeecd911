"""The person behind the data.

A Person row holds no readable personal data: only blind indexes to find
them, their data key, and lifecycle timestamps.  Everything they gave us
lives in other apps' rows, encrypted under ``data_key`` and linked here.
A Person is never deleted: erasure destroys the data key (crypto-shredding)
and keeps the row as the anchor of the audit trail.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from uuid6 import uuid7

from piwarden.prepared import Param, PreparedSelect, columns_of
from piwarden.vault.fields import BlindIndexField
from piwarden.vault.models import DataKey


class Person(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    data_key = models.OneToOneField(DataKey, on_delete=models.PROTECT, related_name="person")
    email_index = BlindIndexField(unique=True)
    phone_index = BlindIndexField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    restricted_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Person {self.reference}"

    @property
    def reference(self) -> str:
        """A short, non-identifying handle staff can quote (the id's random tail)."""
        return self.id.hex[-10:].upper()

    @property
    def is_restricted(self) -> bool:
        return self.restricted_at is not None

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


_BY_ID = PreparedSelect(
    lambda: Person.objects.filter(pk=Param("person", models.UUIDField())).values_list(*columns_of(Person)),
    streamed=False,
)


def person_by_id(pk: Any) -> Person:
    """``Person.objects.get(pk=pk)``, the statement compiled once per process (the archive's task
    loads its person each time)."""
    person = _BY_ID.instance(Person, person=pk)
    if person is None:
        raise Person.DoesNotExist(f"Person {pk} does not exist.")
    return person
