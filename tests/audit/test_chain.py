"""Rewrite any column of an audit event, sealed or not, and verification names the event.

The tamper is a bare SQL UPDATE (``QuerySet.update``: no ``save()``, no model code), what
someone with write access to the database would do.  The tests walk the model's concrete
columns, so a column added later is tampered with too, and fail when ``content()`` leaves a
column out.  ``verify_chain()`` is checked here column by column; the command's own verdict
(message and exit status) is in ``test_verify_command.py``.

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

from piwarden.audit.chain import seal
from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditChainHead, AuditEvent
from tests.conftest import sign_in
from tests.vault.test_vault import sent

pytestmark = pytest.mark.django_db

ZHANG = {"name": "张伟", "email": "zhang.wei@example.com"}
LI = {"name": "李娜", "email": "li.na@example.com", "phone": "13900139000"}

# Columns the content digest does not cover, each with the reason it need not.
NOT_IN_CONTENT = {
    "id": "the insertion order: the sealer's hash covers it",
    "seq": "the chain's order, set by the sealer: its hash covers it",
    "prev_hash": "covered by the hash: hash = SHA-256(prev_hash, seq, id, digest, content)",
    "hash": "the hash itself; a rewritten hash no longer follows from its row",
    "digest": "the digest itself; a rewritten digest no longer follows from the content (or the hash)",
}
# Columns of an *unsealed* event whose rewrite cannot be seen, each with the reason.
UNSEEN_WHEN_PENDING = {
    "id": "before the seal nothing fixes the insertion order; the sealer orders by id as it finds it",
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


def tamper(event: AuditEvent, name: str) -> int:
    """Rewrite one column of ``event``; return the id the event has afterwards."""
    field = AuditEvent._meta.get_field(name)
    assert isinstance(field, models.Field)
    if name == "id":
        new_id = AuditEvent.objects.order_by("-id").values_list("id", flat=True)[0] + 1000
        assert AuditEvent.objects.filter(pk=event.pk).update(id=new_id) == 1
        return new_id
    if name == "seq" and event.seq is not None:
        # Renumber this event and those after it (order kept, so only the chain can tell).
        AuditEvent.objects.filter(seq__gte=event.seq).update(seq=F("seq") + 1000)
        return event.pk
    if getattr(event, field.attname) is None:  # a column the sealer has not filled in yet
        value: Any = 1000 if name == "seq" else "0" * 64
    else:
        value = other_value(field, event)
    assert value is not None, f"no other value for {name}"
    assert value != getattr(event, field.attname)
    assert AuditEvent.objects.filter(pk=event.pk).update(**{field.attname: value}) == 1
    return event.pk


@pytest.fixture
def scene(submit: Callable[..., Any], alice: User, bob: User, assign: Any) -> AuditEvent:
    """The reveal, with events after it, nothing sealed."""
    zhang = sent(submit, ZHANG)
    sent(submit, LI)  # a second person, for the person column to point at
    assign(zhang.reference, alice)  # sales see only the requests assigned to them
    staff = Client()
    assert sign_in(staff, alice).status_code == HTTPStatus.FOUND
    response = staff.post(
        f"/backoffice/inquiries/{zhang.reference}/",
        {"purpose": "respond_inquiry", "field_names": ["name", "email"], "reason": "Calling back about the quote"},
    )
    assert response.status_code == HTTPStatus.OK
    staff.post("/backoffice/logout/")  # so that events follow the target
    event = AuditEvent.objects.get(event_type="pii.revealed")
    assert AuditEvent.objects.filter(id__gt=event.id).exists()
    return event


@pytest.fixture
def sealed(scene: AuditEvent) -> AuditEvent:
    assert verify_chain() is None
    assert seal() == AuditEvent.objects.count()
    assert verify_chain() is None
    event = AuditEvent.objects.get(pk=scene.pk)
    assert event.seq is not None
    return event


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize("column", [*COLUMNS, "id"])
@pytest.mark.usefixtures("triggers_dropped")
def test_rewriting_any_column_of_a_sealed_event_is_detected_and_names_it(sealed: AuditEvent, column: str) -> None:
    now_id = tamper(sealed, column)
    broken = verify_chain()
    assert broken is not None
    assert broken.pk == now_id


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize("column", [c for c in [*COLUMNS, "id"] if c not in UNSEEN_WHEN_PENDING])
@pytest.mark.usefixtures("triggers_dropped")
def test_rewriting_any_column_of_an_unsealed_event_is_detected_and_names_it(scene: AuditEvent, column: str) -> None:
    assert scene.seq is None
    assert verify_chain() is None
    now_id = tamper(scene, column)
    broken = verify_chain()
    assert broken is not None
    assert broken.pk == now_id


@pytest.mark.duty("SEC-02")
@pytest.mark.usefixtures("triggers_dropped")
def test_the_sealer_leaves_a_rewritten_pending_event_unsealed_and_seals_the_rest(scene: AuditEvent) -> None:
    AuditEvent.objects.filter(pk=scene.pk).update(reason="routine check")
    assert seal() == AuditEvent.objects.count() - 1
    assert AuditEvent.objects.get(pk=scene.pk).seq is None
    assert verify_chain() == scene


@pytest.mark.usefixtures("triggers_dropped")
def test_deleting_a_sealed_event_names_the_one_after_it(sealed: AuditEvent) -> None:
    follower = AuditEvent.objects.get(seq=sealed.seq + 1)  # type: ignore[operator]  # sealed
    AuditEvent.objects.filter(pk=sealed.pk).delete()
    assert verify_chain() == follower


@pytest.mark.usefixtures("triggers_dropped")
def test_deleting_the_last_sealed_events_is_detected(sealed: AuditEvent) -> None:
    last = AuditEvent.objects.order_by("-seq").first()
    assert last is not None
    AuditEvent.objects.filter(seq__gt=sealed.seq).delete()
    assert verify_chain() == sealed  # the chain now ends here, but the head says it went further


@pytest.mark.usefixtures("triggers_dropped")
def test_deleting_the_chain_head_is_detected(sealed: AuditEvent) -> None:
    AuditChainHead.objects.all().delete()
    assert verify_chain() == AuditEvent.objects.order_by("-seq").first()


@pytest.mark.usefixtures("triggers_dropped")
def test_swapping_two_sealed_events_is_detected(sealed: AuditEvent) -> None:
    seq = sealed.seq
    assert seq is not None
    follower = AuditEvent.objects.get(seq=seq + 1)
    AuditEvent.objects.filter(pk=sealed.pk).update(seq=-1)
    AuditEvent.objects.filter(pk=follower.pk).update(seq=seq)
    AuditEvent.objects.filter(pk=sealed.pk).update(seq=seq + 1)
    assert verify_chain() == follower  # now first in the order, and it does not follow its predecessor


@pytest.mark.duty("SEC-02")
def test_the_digest_covers_every_column_but_the_chains_own() -> None:
    event = AuditEvent.objects.model(
        occurred_at=datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
        event_type="consent.given",
        actor_kind="visitor",
    )
    content = {name.removesuffix("_id") for name in event.content()}
    columns = {f.name for f in AuditEvent._meta.concrete_fields}
    assert content == columns - NOT_IN_CONTENT.keys()
