"""The audit hash covers every column: rewrite any one of them and ``verify_chain`` names the event.

The tamper is a bare SQL UPDATE (``QuerySet.update``: no ``save()``, no model code), what
someone with write access to the database would do.  The tests walk the model's concrete
columns, so a column added later is tampered with too, and fail when ``chain_body()``
leaves a column out.

Scene: 张伟 and 李娜 each send a consultation; alice (sales) reveals 张伟's name and e-mail
and signs out; bob (auditor) exists.  The reveal is the target: it has a person, an actor,
a purpose, fields, a reason and extra, and events follow it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import models
from django.db.models import F
from django.test import Client

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from tests.conftest import sign_in
from tests.vault.test_vault import sent

pytestmark = pytest.mark.django_db

ZHANG = {"name": "张伟", "email": "zhang.wei@example.com"}
LI = {"name": "李娜", "email": "li.na@example.com", "phone": "13900139000"}

# Columns the hash does not cover, each with the reason it need not.
NOT_IN_BODY = {
    "id": "the surrogate key: nothing refers to it and the chain is ordered by seq",
    "prev_hash": "covered by the hash itself: hash = SHA-256(prev_hash || body)",
    "hash": "the hash itself; a rewritten hash no longer follows from its body",
}

COLUMNS = [f.name for f in AuditEvent._meta.concrete_fields if f.name != "id"]


def other_value(field: models.Field[Any, Any], event: AuditEvent) -> Any:
    """A different, valid value for ``field`` of ``event`` (by the field's kind, so new columns are covered)."""
    current = getattr(event, field.attname)
    if field.is_relation:
        assert field.related_model is not None
        related: Any = field.related_model
        return related.objects.exclude(pk=current).values_list("pk", flat=True).first()
    if field.choices:
        return next(value for value, _label in field.flatchoices if value != current)
    if isinstance(field, models.DateTimeField):
        return current + datetime.timedelta(seconds=1)
    if isinstance(field, models.JSONField):
        return [*current, "phone"] if isinstance(current, list) else {**current, "tampered": True}
    if isinstance(field, models.CharField) and field.max_length is not None and len(current) >= field.max_length:
        return current[:-1] + ("0" if current[-1] != "0" else "1")  # a hash: same length, one digit changed
    if isinstance(field, models.CharField | models.TextField):
        return current + " (edited)"
    raise AssertionError(f"no tamper for AuditEvent.{field.name} ({type(field).__name__}): add one here")


def tamper(event: AuditEvent, name: str) -> None:
    field = AuditEvent._meta.get_field(name)
    assert isinstance(field, models.Field)
    if isinstance(field, models.IntegerField):
        # Renumber this event and those after it (order kept, so only the hash can tell).
        AuditEvent.objects.filter(seq__gte=event.seq).update(**{field.attname: F(field.attname) + 1000})
        return
    value = other_value(field, event)
    assert value is not None, f"no other value for {name}"
    assert value != getattr(event, field.attname)
    assert AuditEvent.objects.filter(pk=event.pk).update(**{field.attname: value}) == 1


@pytest.fixture
def target(submit: Callable[..., Any], alice: User, bob: User) -> AuditEvent:
    zhang = sent(submit, ZHANG)
    sent(submit, LI)  # a second person, for the person column to point at
    staff = Client()
    assert sign_in(staff, alice).status_code == HTTPStatus.FOUND
    response = staff.post(
        f"/backoffice/inquiries/{zhang.reference}/",
        {"purpose": "respond_inquiry", "field_names": ["name", "email"], "reason": "Calling back about the quote"},
    )
    assert response.status_code == HTTPStatus.OK
    staff.post("/backoffice/logout/")  # so that events follow the target
    event = AuditEvent.objects.get(event_type="pii.revealed")
    assert AuditEvent.objects.filter(seq__gt=event.seq).exists()
    assert verify_chain() is None
    return event


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize("column", COLUMNS)
def test_rewriting_any_column_of_an_event_is_detected_and_names_it(target: AuditEvent, column: str) -> None:
    tamper(target, column)
    assert verify_chain() == target


@pytest.mark.duty("SEC-02")
def test_the_hash_covers_every_column_but_the_hashes() -> None:
    event = AuditEvent.objects.model(
        seq=1,
        occurred_at=datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
        event_type="consent.given",
        actor_kind="visitor",
    )
    body = set(event.chain_body())
    columns = {f.name for f in AuditEvent._meta.concrete_fields}
    assert body == columns - NOT_IN_BODY.keys()
