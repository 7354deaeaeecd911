"""Prepared INSERTs write what ``save()`` and ``enqueue()`` write, with the work done before the transaction."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import DatabaseError, connection, models, transaction
from django.db.models import signals
from django.tasks.signals import task_enqueued
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from piwarden import prepared
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.inquiries.tasks import acknowledge_inquiry, notify_sales
from piwarden.people.actions import new_person
from piwarden.people.models import Person
from piwarden.prepared import (
    Param,
    Params,
    PreparedInsert,
    PreparedSelect,
    prepare_enqueue,
    prepare_insert,
    save_fields,
    update_rows,
)
from piwarden.vault import crypto
from piwarden.vault.fields import associated_data, encrypted_field, open_value
from tests.conftest import consultation_data

# Columns that differ between two rows of one task by nature.
_OWN = {"id", "enqueued_at"}


def _columns(row: DBTaskResult[Any, Any]) -> dict[str, Any]:
    return {f.attname: getattr(row, f.attname) for f in DBTaskResult._meta.concrete_fields if f.attname not in _OWN}


@pytest.mark.django_db
def test_a_prepared_enqueue_writes_the_row_enqueue_writes():
    """The task backend's own row, column for column: a new django_tasks_db that changes it fails here."""
    ours = prepare_enqueue(notify_sales, "0190abcd")
    with transaction.atomic():
        ours.run()
    theirs = notify_sales.enqueue("0190abcd")
    rows = {str(r.pk): r for r in DBTaskResult.objects.all()}
    assert set(rows) == {str(ours.instance.pk), theirs.id}
    assert _columns(rows[str(ours.instance.pk)]) == _columns(rows[theirs.id])
    assert rows[str(ours.instance.pk)].task_result.args == ["0190abcd"]


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_is_sent_after_commit_and_not_after_a_rollback():
    sent: list[str] = []

    def note(sender: object, *, task_result: Any, **kwargs: object) -> None:
        sent.append(task_result.id)

    task_enqueued.connect(note, dispatch_uid="test_prepared")
    try:
        kept, dropped = prepare_enqueue(acknowledge_inquiry, "kept"), prepare_enqueue(acknowledge_inquiry, "dropped")
        with transaction.atomic():
            kept.run()
            assert sent == []  # not while the row could still roll back
        assert sent == [str(kept.instance.pk)]
        with pytest.raises(RuntimeError):
            _run_then_fail(dropped)
        assert sent == [str(kept.instance.pk)]
        assert list(DBTaskResult.objects.values_list("pk", flat=True)) == [kept.instance.pk]
    finally:
        task_enqueued.disconnect(dispatch_uid="test_prepared")


def _run_then_fail(row: PreparedInsert) -> None:
    with transaction.atomic():
        row.run()
        raise RuntimeError("the act failed")


@pytest.mark.django_db
def test_a_request_sealed_before_the_transaction_reads_back_and_is_bound_to_its_row():
    person = new_person(email="zhang.wei@example.com", phone="13800138000")
    data = consultation_data()
    inquiry = Inquiry(
        person=person.person,
        data_key_id=person.person.data_key_id,
        submission_token=uuid.uuid4(),
        language="zh-hans",
        **{f: data[f] for f in ("name", "phone", "email", "company", "industry", "position", "region", "product")},
    )
    row = prepare_insert(inquiry)  # sealed here, outside any transaction
    sealed_name = bytes(inquiry.__dict__["name"])  # the ciphertext the INSERT will send
    assert data["name"].encode() not in sealed_name
    with transaction.atomic():
        person()
        row.run()
    crypto.forget_cached_keys()  # read with the key unwrapped from the database, not the one made here
    stored = Inquiry.objects.get(pk=inquiry.pk)
    assert (stored.name, stored.email, stored.region) == (data["name"], data["email"], data["region"])
    field = Inquiry._meta.get_field("name")
    other_row = Inquiry(pk=uuid.uuid4(), data_key_id=stored.data_key_id)
    with pytest.raises(crypto.CiphertextInvalid):
        crypto.decrypt(stored.data_key_id, sealed_name, associated_data(other_row, field))


@pytest.mark.django_db
def test_the_statement_is_seen_by_whoever_counts_statements_and_save_signals_are_sent():
    seen: list[tuple[str, bool]] = []

    def pre(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
        seen.append(("pre_save", instance._state.adding))

    def post(sender: type[models.Model], instance: models.Model, created: bool, **kwargs: Any) -> None:
        seen.append(("post_save", created))

    signals.pre_save.connect(pre, sender=DBTaskResult, dispatch_uid="test_prepared_pre")
    signals.post_save.connect(post, sender=DBTaskResult, dispatch_uid="test_prepared_post")
    try:
        row = prepare_enqueue(notify_sales, "x")
        assert seen == [("pre_save", True)]
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            row.run()
    finally:
        signals.pre_save.disconnect(dispatch_uid="test_prepared_pre")
        signals.post_save.disconnect(dispatch_uid="test_prepared_post")
    assert seen == [("pre_save", True), ("post_save", True)]
    assert [q["sql"].split()[0] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]] == ["INSERT"]
    assert not row.instance._state.adding


def test_a_row_without_its_primary_key_is_refused():
    with pytest.raises(ValueError, match="primary key"):
        prepare_insert(ConsentRecord(id=None, purpose="respond_inquiry"))


# --- SELECTs and UPDATEs -----------------------------------------------------------------------

_CONSENTS = PreparedSelect(
    lambda: (
        ConsentRecord.objects.filter(person_id=Param("person", models.UUIDField()))
        .order_by("given_at", "id")
        .values_list("id", "purpose", "given_at", "withdrawn_at")
    )
)
_STEPS_OF = PreparedSelect(
    lambda: (
        ConsentRecord.objects.filter(id__in=Params("ids", models.UUIDField()), purpose__startswith="respond")
        .order_by("id")
        .values_list("id", "person_id")
    )
)


@pytest.mark.django_db
def test_a_prepared_select_reads_what_the_orm_reads_converted_and_in_chunks(client):
    for product in ("data", "cloud", "data"):
        client.post("/en/consultation/", consultation_data(product=product))
    person = Inquiry.objects.first().person  # type: ignore[union-attr]
    orm = list(
        ConsentRecord.objects.filter(person=person)
        .order_by("given_at", "id")
        .values_list("id", "purpose", "given_at", "withdrawn_at")
    )
    assert len(orm) == 3
    assert list(_CONSENTS.rows(person=person.pk, chunk=1)) == orm  # UUIDs and datetimes, as the ORM gives them
    assert list(_CONSENTS.rows(person=uuid.uuid4())) == []
    ids = [row[0] for row in orm]
    assert list(_STEPS_OF.rows(ids=ids[:2])) == sorted((pk, person.pk) for pk in ids[:2])  # an IN of two
    assert list(_STEPS_OF.rows(ids=ids)) == sorted((pk, person.pk) for pk in ids)  # and of three, the same text
    with CaptureQueriesContext(connection) as counted:  # seen by whoever counts, as the ORM's are
        list(_CONSENTS.rows(person=person.pk))
    assert len(counted.captured_queries) == 1


@pytest.mark.django_db
def test_on_postgresql_a_streamed_select_looks_first_and_opens_a_server_cursor_only_for_more(client, monkeypatch):
    """A person's few rows in one round trip; more than PROBE: the whole statement again, streamed,
    and every row once (not the probe's rows and then the cursor's)."""
    for product in ("data", "cloud", "data"):
        client.post("/en/consultation/", consultation_data(product=product))
    person = Inquiry.objects.first().person  # type: ignore[union-attr]
    everything = list(_CONSENTS.rows(person=person.pk))
    postgres = connection.vendor == "postgresql"
    with CaptureQueriesContext(connection) as counted:
        assert list(_CONSENTS.rows(person=person.pk)) == everything
    assert [q["sql"].endswith("LIMIT 201") for q in counted.captured_queries] == [postgres]
    monkeypatch.setattr(prepared, "PROBE", 2)
    with CaptureQueriesContext(connection) as counted:
        assert list(_CONSENTS.rows(person=person.pk, chunk=1)) == everything
    statements = [q["sql"] for q in counted.captured_queries]
    assert len(statements) == (2 if postgres else 1)
    assert statements[-1].endswith("ASC")  # the statement itself, whole (a server-side cursor on PostgreSQL)


@pytest.mark.django_db
def test_an_encrypted_value_read_without_its_instance_opens_as_the_attribute_opens_it(client):
    client.post("/en/consultation/", consultation_data())
    inquiry = Inquiry.objects.get()
    stored = Inquiry.objects.filter(pk=inquiry.pk).values_list("name", flat=True).get()
    assert open_value(encrypted_field(Inquiry, "name"), inquiry.pk, inquiry.data_key_id, stored) == inquiry.name
    with pytest.raises(crypto.CiphertextInvalid):  # bound to its row: another row's id does not open it
        open_value(encrypted_field(Inquiry, "name"), uuid.uuid4(), inquiry.data_key_id, stored)


@pytest.mark.django_db
def test_prepared_updates_change_what_save_and_update_change():
    made = new_person(email="zhang.wei@example.com", phone="13800138000")
    with transaction.atomic():
        person = made()
    assert update_rows(Person, {"restricted_at": person.created_at}, where={"id": person.pk}) == 1
    assert update_rows(Person, {"restricted_at": None}, where={"id": uuid.uuid4()}) == 0
    person.refresh_from_db()
    assert person.restricted_at == person.created_at
    data = consultation_data()
    inquiry = Inquiry(
        person=person,
        data_key_id=person.data_key_id,
        submission_token=uuid.uuid4(),
        language="en",
        **{f: data[f] for f in ("name", "phone", "email", "company", "industry", "position", "region", "product")},
    )
    inquiry.save()
    inquiry.company = "新公司"
    save_fields(inquiry, ["company"])  # sealed by the field's pre_save, bound to its row
    assert Inquiry.objects.get(pk=inquiry.pk).company == "新公司"
    gone = Inquiry(pk=uuid.uuid4(), person=person, data_key_id=person.data_key_id, company="x")
    with pytest.raises(DatabaseError):
        save_fields(gone, ["company"])
