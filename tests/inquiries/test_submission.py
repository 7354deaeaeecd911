"""The submission's write path, called as the view calls it: one act, one transaction, nothing twice.

``submit_inquiry`` hands the gate the person to find or create and the consent the form gives;
everything it writes commits together.  These tests go under the view to the guarantees the
write path holds on its own.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import AuditEvent
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.actions import Submission, submit_inquiry
from piwarden.inquiries.models import REQUEST_FIELDS, Inquiry
from piwarden.people.actions import erase_unheld, new_person
from piwarden.people.models import Person
from piwarden.site.housekeeping import UNHELD_ERASURE_REASON
from piwarden.vault.models import DataKey
from tests.conftest import consultation_data


def submission(token: uuid.UUID | None = None, **overrides: Any) -> Submission:
    data = {**consultation_data(), **overrides}
    return Submission(
        values={f: data[f] for f in REQUEST_FIELDS},
        submission_token=token or uuid.uuid4(),
        language="zh-hans",
        consent_text="我同意",
    )


def counts() -> dict[str, int]:
    models = (Person, ConsentRecord, Inquiry, AuditEvent, DBTaskResult)
    return {model.__name__: model.objects.count() for model in models}


@pytest.mark.django_db
def test_a_replayed_submission_returns_the_first_request_and_creates_nothing():
    """A double click meets the token's unique index."""
    token = uuid.uuid4()
    first, created = submit_inquiry(submission(token))
    assert created
    before = counts()
    again, created = submit_inquiry(submission(token, name="另一个名字"))
    assert (again, created) == (first, False)
    assert counts() == before


@pytest.mark.django_db
def test_a_known_persons_submission_joins_them_after_the_unique_index_says_so():
    """The first attempt takes the e-mail for a new one; the index refuses it, nothing of it stays."""
    first, _ = submit_inquiry(submission(email="zhang.wei@example.com"))
    before = counts()
    second, created = submit_inquiry(submission(email="Zhang.Wei@example.com"))
    assert created
    assert second.person_id == first.person_id
    assert second.data_key_id == first.data_key_id
    after = counts()
    assert after["Person"] == before["Person"]
    assert (after["Inquiry"], after["ConsentRecord"], after["DBTaskResult"]) == (
        before["Inquiry"] + 1,
        before["ConsentRecord"] + 1,
        before["DBTaskResult"] + 2,
    )
    assert after["AuditEvent"] == before["AuditEvent"] + 2  # consent and request: no person created
    assert DataKey.objects.count() == Person.objects.count()  # the refused attempt's key was never stored
    assert second.name == consultation_data()["name"]  # sealed under the person's own key


@pytest.mark.django_db
def test_a_new_persons_submission_writes_each_row_once_and_reads_nothing_back():
    submit_inquiry(submission(email="first@example.com"))  # the audit chain exists from here on
    with CaptureQueriesContext(connection) as queries:
        submit_inquiry(submission(email="zhang.wei@example.com"))
    statements = [q["sql"] for q in queries.captured_queries]
    # Inside the test's transaction the gate's transaction is one savepoint; there is no other.
    assert [s.split()[0] for s in statements if "SAVEPOINT" in s] == ["SAVEPOINT", "RELEASE"]
    # The audit log's own statements are its business (tests/audit); the rest, in order:
    ours = [s for s in statements if "SAVEPOINT" not in s and '"audit_' not in s]
    assert [(s.split()[0], _table(s)) for s in ours] == [
        # no lookup by the e-mail's blind index: the person's unique index says whether it is known
        ("INSERT", "vault_datakey"),
        ("INSERT", "people_person"),
        ("INSERT", "consent_consentrecord"),  # and no read of it back: the gate counts it as given
        ("INSERT", "inquiries_inquiry"),
        ("INSERT", "django_tasks_database_dbtaskresult"),  # the acknowledgement
        ("INSERT", "django_tasks_database_dbtaskresult"),  # the sales notice
    ]


def _table(sql: str) -> str:
    word = "INTO" if sql.startswith("INSERT") else "FROM"
    return sql.split(f"{word} ", 1)[1].split(maxsplit=1)[0].strip('"')


@pytest.mark.django_db(transaction=True)
def test_two_first_requests_with_one_email_end_with_one_person():
    """The loser of the race on the person's unique index runs again and joins the winner's person.

    On SQLite writers queue at BEGIN (IMMEDIATE), so the race cannot happen there.
    """
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers at BEGIN: no two first requests overlap")
    raced: list[Inquiry] = []

    def rival() -> None:
        try:
            raced.append(submit_inquiry(submission(email="wang.fang@example.com"))[0])
        finally:
            connections.close_all()

    def before_the_person_insert(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not raced and sql.startswith('INSERT INTO "people_person"'):
            thread = threading.Thread(target=rival)  # commits the same new person first
            thread.start()
            thread.join()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(before_the_person_insert):
        mine, created = submit_inquiry(submission(email="wang.fang@example.com"))
    assert created
    assert len(raced) == 1
    assert Person.objects.count() == 1
    assert mine.person_id == raced[0].person_id
    assert Inquiry.objects.count() == ConsentRecord.objects.count() == 2
    assert DBTaskResult.objects.count() == 4


def _stored_person(email: str) -> Person:
    """A person nothing holds (as a rights request never confirmed leaves them once it is swept)."""
    with transaction.atomic():
        return new_person(email=email)()


def _sweep(person_id: uuid.UUID, done: list[object]) -> None:
    """The housekeeping's erasure of people nothing holds, in a connection of its own."""
    try:
        with transaction.atomic(durable=True):
            done.append(erase_unheld([person_id], reason=UNHELD_ERASURE_REASON))
    except BaseException as exc:  # noqa: BLE001  # reported by the test
        done.append(exc)
    finally:
        connections.close_all()


def _is_the_gates_read_of(sql: str) -> bool:
    # The gate reads the person's restriction and erasure again, alone; the look-up reads every column.
    return sql.startswith("SELECT") and '"people_person"."erased_at"' in sql and "email_index" not in sql


@pytest.mark.django_db(transaction=True)
def test_a_sweep_erasing_the_person_while_the_gate_reads_them_waits_and_keeps_them():
    """The gate locks the person it read until its use commits, so an erasure of "people nothing
    holds" running at that moment waits, then finds the new request holding them.  Read without
    the lock (PostgreSQL, READ COMMITTED), the erasure committed in between and the request was
    stored under a data key already destroyed: acknowledged, and unreadable for ever."""
    person = _stored_person("li.na@example.com")
    swept: list[object] = []
    sweeper: list[threading.Thread] = []

    def after_the_gates_read(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if not sweeper and _is_the_gates_read_of(sql):
            sweeper.append(threading.Thread(target=_sweep, args=(person.pk, swept)))
            sweeper[0].start()
            sweeper[0].join(timeout=1.5)  # it finishes here only if nothing holds it back
        return result

    with connection.execute_wrapper(after_the_gates_read):
        inquiry, created = submit_inquiry(submission(email="li.na@example.com"))
    sweeper[0].join(timeout=30)
    assert created
    assert sweeper
    assert not sweeper[0].is_alive()
    assert swept == [[]], swept  # the sweep ran, and found the person held by the new request
    inquiry.refresh_from_db()
    assert inquiry.person_id == person.pk
    assert Person.objects.get(pk=person.pk).erased_at is None
    assert Inquiry.objects.get(pk=inquiry.pk).name == consultation_data()["name"]  # readable


@pytest.mark.django_db(transaction=True)
def test_a_person_erased_between_the_look_up_and_the_gate_makes_the_request_a_new_persons():
    """The look-up found the person; the sweep erased them (and their e-mail's blind index) before
    the gate read them: the gate refuses the erased person, and the request is stored as a new
    person's, not refused with a message about a restriction nobody made."""
    person = _stored_person("zhao.lei@example.com")
    swept: list[object] = []

    def before_the_gates_read(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not swept and _is_the_gates_read_of(sql):
            sweeper = threading.Thread(target=_sweep, args=(person.pk, swept))
            sweeper.start()
            sweeper.join(timeout=1.5)
        return execute(sql, params, many, context)

    if connection.vendor == "sqlite":
        pytest.skip("SQLite's gate holds the write lock from BEGIN: no erasure commits inside its transaction")
    with connection.execute_wrapper(before_the_gates_read):
        inquiry, created = submit_inquiry(submission(email="zhao.lei@example.com"))
    assert swept == [[person.pk]]
    assert created
    assert inquiry.person_id != person.pk
    assert Person.objects.get(pk=person.pk).erased_at is not None
    assert Inquiry.objects.get(pk=inquiry.pk).name == consultation_data()["name"]
