"""The database triggers that keep the audit log append-only (``piwarden.audit.appendonly``).

Run on the database of the test run: SQLite by default, PostgreSQL with ``DATABASE_URL``.  An
UPDATE or DELETE of an event, a checkpoint or the chain head is refused through the ORM and
through raw SQL alike; the sealer still seals; ``flush`` empties the log and puts the triggers
back; ``missing`` names a trigger dropped, disabled or replaced.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from piwarden.audit import appendonly
from piwarden.audit.chain import checkpoint, seal, verify
from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from piwarden.people.actions import erase_person, find_or_create_person

REFUSED = "the audit log is append-only"


def record(n: int, **extra: object) -> None:
    with transaction.atomic():
        for i in range(n):
            record_event(EventType.STAFF_SIGN_IN_FAILED, purpose="security", extra={"i": i, **extra})


def sql(statement: str, *params: object) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, list(params))


def refused(change: Callable[[], object]) -> str:
    """The error the database answers ``change`` with (in a savepoint, so the test goes on)."""
    with pytest.raises(IntegrityError, match=REFUSED) as caught, transaction.atomic():
        change()
    return str(caught.value)


@pytest.fixture
def sealed(db: None) -> AuditEvent:
    record(3)
    assert seal() == 3
    return AuditEvent.objects.get(seq=2)


@pytest.mark.duty("SEC-02")
@pytest.mark.parametrize("column", ["reason", "purpose", "extra", "occurred_at", "seq", "hash", "prev_hash", "digest"])
def test_an_update_of_a_sealed_event_is_refused(sealed: AuditEvent, column: str) -> None:
    other = AuditEvent.objects.get(seq=1)
    refused(lambda: AuditEvent.objects.filter(pk=sealed.pk).update(**{column: getattr(other, column)}))
    assert verify() is None


@pytest.mark.duty("SEC-02")
def test_an_update_in_raw_sql_is_refused_with_a_clear_error(sealed: AuditEvent) -> None:
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    error = refused(lambda: sql(f"UPDATE {table} SET reason = %s WHERE id = %s", "nothing happened", sealed.pk))  # noqa: S608
    assert "an audit event is never changed or deleted" in error
    assert AuditEvent.objects.get(pk=sealed.pk).reason == ""


@pytest.mark.duty("SEC-02")
@pytest.mark.duty("RET-04")
def test_a_delete_of_an_event_is_refused_through_the_orm_and_in_sql(sealed: AuditEvent) -> None:
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    refused(lambda: AuditEvent.objects.filter(pk=sealed.pk).delete())
    refused(lambda: sql(f"DELETE FROM {table} WHERE id = %s", sealed.pk))  # noqa: S608
    refused(lambda: sql(f"DELETE FROM {table}"))  # noqa: S608
    assert AuditEvent.objects.count() == 3
    assert verify() is None


@pytest.mark.duty("SEC-02")
def test_an_unsealed_events_content_cannot_change_and_the_sealer_still_seals_it(sealed: AuditEvent) -> None:
    record(2, late=True)
    pending = AuditEvent.objects.filter(seq=None).order_by("id").first()
    assert pending is not None
    refused(lambda: AuditEvent.objects.filter(pk=pending.pk).update(reason="added later"))
    refused(lambda: AuditEvent.objects.filter(pk=pending.pk).delete())
    # Sealing columns only, but half of them: the sealer always sets all three.
    refused(lambda: AuditEvent.objects.filter(pk=pending.pk).update(seq=99))
    assert seal() == 2
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    assert verify() is None
    # Once sealed, the sealing columns are as fixed as the rest.
    refused(lambda: AuditEvent.objects.filter(pk=pending.pk).update(seq=None, prev_hash=None, hash=None))


@pytest.mark.duty("SEC-02")
def test_a_checkpoint_can_be_neither_changed_nor_deleted(sealed: AuditEvent) -> None:
    assert checkpoint(span=2) == 1
    taken = AuditCheckpoint.objects.get()
    refused(lambda: AuditCheckpoint.objects.filter(pk=taken.pk).update(digest="0" * 64))
    refused(lambda: AuditCheckpoint.objects.filter(pk=taken.pk).delete())
    assert AuditCheckpoint.objects.get().digest == taken.digest
    assert verify() is None


@pytest.mark.duty("SEC-02")
def test_the_chain_head_only_moves_forward(sealed: AuditEvent) -> None:
    first = AuditEvent.objects.get(seq=1)
    refused(lambda: AuditChainHead.objects.filter(pk=1).update(seq=1, hash=first.hash))
    refused(lambda: AuditChainHead.objects.filter(pk=1).update(hash="0" * 64))
    refused(lambda: AuditChainHead.objects.all().delete())
    record(1)
    assert seal() == 1  # the sealer moves it on
    assert AuditChainHead.objects.get(pk=1).seq == 4
    assert verify() is None


@pytest.mark.duty("SEC-02")
def test_sqlite_refuses_a_replace_and_a_pre_sealed_insert(sealed: AuditEvent) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("INSERT OR REPLACE is SQLite's (it deletes the row it replaces without a DELETE trigger)")
    events = connection.ops.quote_name(AuditEvent._meta.db_table)
    refused(lambda: sql(f"INSERT OR REPLACE INTO {events} SELECT * FROM {events} WHERE id = %s", sealed.pk))  # noqa: S608
    record(1)
    pending = AuditEvent.objects.get(seq=None)
    # "Sealing" a pending event onto seq 2 with OR REPLACE would delete the event at seq 2.
    refused(
        lambda: sql(
            f"UPDATE OR REPLACE {events} SET seq = 2, prev_hash = %s, hash = %s WHERE id = %s",  # noqa: S608
            sealed.prev_hash,
            sealed.hash,
            pending.pk,
        )
    )
    assert AuditEvent.objects.filter(pk=sealed.pk, seq=2).exists()
    assert checkpoint(span=2) == 1
    checkpoints = connection.ops.quote_name(AuditCheckpoint._meta.db_table)
    refused(lambda: sql(f"INSERT OR REPLACE INTO {checkpoints} SELECT * FROM {checkpoints}"))  # noqa: S608
    forged = AuditEvent(
        seq=99, occurred_at=sealed.occurred_at, event_type=sealed.event_type, actor_kind=sealed.actor_kind,
        digest=sealed.digest, prev_hash="0" * 64, hash="1" * 64,
    )  # fmt: skip
    refused(forged.save)
    assert verify() is None


@pytest.mark.duty("SEC-02")
@pytest.mark.duty("RET-04")
@pytest.mark.django_db(transaction=True)  # committed rows: a TRUNCATE meets their pending FK checks first
def test_postgresql_refuses_truncate(sealed: AuditEvent) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's (SQLite's is a DELETE)")
    for model in (AuditEvent, AuditCheckpoint, AuditChainHead):
        refused(lambda model=model: sql(f"TRUNCATE {connection.ops.quote_name(model._meta.db_table)} CASCADE"))
    assert AuditEvent.objects.count() == 3


@pytest.mark.duty("RET-04")
def test_an_erased_person_stays_as_the_audits_anchor_and_is_never_deleted(db: None) -> None:
    """The audit keeps the person's id: erasure destroys their key and keeps the row (PROTECT)."""
    with transaction.atomic():
        person = find_or_create_person(email="erased@example.com")
    assert erase_person(person, reason="asked by e-mail on 4 December, identity checked")
    person.refresh_from_db()
    assert person.is_erased
    kinds = set(AuditEvent.objects.filter(person=person).values_list("event_type", flat=True))
    assert EventType.PERSON_SHREDDED in kinds
    with pytest.raises(ProtectedError), transaction.atomic():
        person.delete()
    assert seal() == AuditEvent.objects.count()
    assert verify() is None


def test_missing_names_the_triggers_dropped_disabled_or_replaced(db: None) -> None:
    assert appendonly.missing(connection) == []
    if connection.vendor == "sqlite":
        sql('DROP TRIGGER "audit_event_no_delete"')
        sql(
            'CREATE TRIGGER "audit_event_no_delete" BEFORE DELETE ON "audit_auditevent" FOR EACH ROW '
            "WHEN 0 BEGIN SELECT RAISE(ABORT, 'never'); END"
        )
        sql('DROP TRIGGER "audit_head_no_delete"')
        assert appendonly.missing(connection) == ["audit_event_no_delete", "audit_head_no_delete"]
    else:
        sql('ALTER TABLE "audit_auditevent" DISABLE TRIGGER "audit_event_append_only"')
        sql(
            'CREATE OR REPLACE FUNCTION "piwarden_audit_checkpoint_guard"() RETURNS trigger '
            "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
        )
        assert appendonly.missing(connection) == [
            "audit_event_append_only",
            "audit_checkpoint_append_only",
            "audit_checkpoint_no_truncate",
        ]
    appendonly.remove(connection)
    assert len(appendonly.missing(connection)) == len(
        appendonly.SQLITE_TRIGGERS if connection.vendor == "sqlite" else appendonly.PG_TRIGGERS
    )
    appendonly.install(connection)
    assert appendonly.missing(connection) == []


def test_the_names_written_out_are_the_models() -> None:
    assert (AuditEvent._meta.db_table, AuditCheckpoint._meta.db_table, AuditChainHead._meta.db_table) == (
        appendonly.EVENTS,
        appendonly.CHECKPOINTS,
        appendonly.HEAD,
    )
    columns = {f.column for f in AuditEvent._meta.concrete_fields}
    assert set(appendonly.UNSEALED_KEEPS) | set(appendonly.SEALING) == columns


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_log_and_puts_the_triggers_back() -> None:
    record(3)
    seal()
    appendonly.remove(connection)  # as a test that tampered leaves them
    call_command("flush", interactive=False, verbosity=0)
    assert AuditEvent.objects.count() == 0
    assert appendonly.missing(connection) == []
    record(1)
    assert seal() == 1
    refused(lambda: AuditEvent.objects.all().delete())


@pytest.mark.django_db(transaction=True)
def test_the_migration_installs_the_triggers_and_its_reverse_removes_them() -> None:
    out = io.StringIO()
    call_command("migrate", "audit", "0008", verbosity=0, stdout=out)
    try:
        assert len(appendonly.missing(connection)) > 0
        record(1)
        AuditEvent.objects.all().delete()  # without the triggers nothing refuses it
    finally:
        call_command("migrate", "audit", verbosity=0, stdout=out)
    assert appendonly.missing(connection) == []
