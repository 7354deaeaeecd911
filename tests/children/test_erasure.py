"""A consultation request flagged by staff as a child's without a guardian's consent is deleted promptly.

Through the console as staff use it (policy §八.3; law CHD-04): the flag is a POST on the request's
page; the erasure is the task the flag queues, run by the real worker.  Afterwards the request's
values are nowhere: not in any row (the canary check reads every table back, binary values raw and
hex), not in the SQLite files (which erase with ``secure_delete``), and its ciphertext, taken
before the flag, is gone too.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from piwarden.audit.models import AuditEvent, EventType
from piwarden.children.erasure import ERASURE_REASON
from piwarden.children.models import ChildMark
from piwarden.inquiries.models import PERSONAL_FIELDS, Inquiry
from piwarden.people.models import Person
from tests.backoffice.test_staff_console import staff_client
from tests.conftest import consultation_data, make_staff
from tests.vault.test_canary import (
    assert_absent,
    assert_absent_from_every_row,
    canaries,
    read_if_present,
    sqlite_files,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("CHD-04")]


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)


def submitted(values: dict[str, str]) -> Inquiry:
    assert Client().post("/en/consultation/", consultation_data(**values)).status_code == HTTPStatus.FOUND
    run_worker()  # the acknowledgement and the sales notice: the request as it lives before a flag
    return Inquiry.objects.select_related("person").get()


def ciphertexts(inquiry: Inquiry) -> list[bytes]:
    row = Inquiry.objects.filter(pk=inquiry.pk).values_list(*PERSONAL_FIELDS).get()
    return [bytes(value) for value in row if value]


@pytest.mark.duty("RET-03")
def test_a_flagged_childs_request_is_erased_and_its_values_are_gone(tmp_path: Path, assign: Any) -> None:
    values = canaries()
    inquiry = submitted(values)
    sales = make_staff("sam", "sales", tmp_path)
    assign(inquiry.reference, sales)
    sealed = ciphertexts(inquiry)
    assert len(sealed) == len(PERSONAL_FIELDS)
    client = staff_client(sales)
    page = client.get(f"/backoffice/inquiries/{inquiry.reference}/")
    assert 'id="flag-child-form"' in page.content.decode()

    response = client.post(f"/backoffice/inquiries/{inquiry.reference}/flag-child/", {"confirm": "yes"})
    assert response.status_code == HTTPStatus.FOUND
    # Flagged: hidden at once from sales (no role of theirs is granted children's data), erasure queued.
    assert ChildMark.objects.filter(person=inquiry.person).exists()
    assert client.get(f"/backoffice/inquiries/{inquiry.reference}/").status_code == HTTPStatus.NOT_FOUND
    flagged = AuditEvent.objects.get(event_type=EventType.CHILD_DATA_FLAGGED, person=inquiry.person)
    assert (flagged.actor_id, flagged.extra["about"]) == (sales.pk, inquiry.reference)

    run_worker()

    person = Person.objects.get(pk=inquiry.person_id)
    assert person.is_erased
    assert person.email_index is None
    assert not Inquiry.objects.filter(pk=inquiry.pk).exists()
    assert not ChildMark.objects.filter(person=person).exists()
    assert AuditEvent.objects.get(event_type=EventType.PERSON_SHREDDED, person=person).reason == ERASURE_REASON
    assert_absent_from_every_row(values)
    for ciphertext in sealed:
        assert_absent_from_every_row({"ciphertext": ciphertext.hex()})
    if connection.vendor == "sqlite":
        written = b"".join(read_if_present(path) for path in sqlite_files())
        assert written  # the control: the files were read
        assert_absent(written, "the SQLite database, its -wal or -shm file", values)
        # The write-ahead log keeps earlier versions of a page until a checkpoint (the data key that
        # opened them is destroyed already); once checkpointed, secure_delete leaves none in the file.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        written = b"".join(read_if_present(path) for path in sqlite_files())
        for ciphertext in sealed:
            assert ciphertext not in written, "a flagged request's ciphertext is still in the SQLite files"


def test_an_unconfirmed_or_refused_flag_changes_nothing(tmp_path: Path, assign: Any) -> None:
    inquiry = submitted(canaries())
    sales = make_staff("sam", "sales", tmp_path)
    assign(inquiry.reference, sales)
    auditor = make_staff("ada", "auditor", tmp_path)
    url = f"/backoffice/inquiries/{inquiry.reference}/flag-child/"
    for language, message in (("zh-hans", "请勾选方框"), ("en", "Tick the box to confirm")):
        client = staff_client(sales)
        client.post("/backoffice/preferences/", {"language": language})
        response = client.post(url, {"confirm": "no"})
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert message in response.content.decode()
    assert staff_client(auditor).post(url, {"confirm": "yes"}).status_code == HTTPStatus.NOT_FOUND
    run_worker()
    assert not ChildMark.objects.exists()
    assert Inquiry.objects.filter(pk=inquiry.pk).exists()
    assert not Person.objects.get(pk=inquiry.person_id).is_erased
