"""Associated data binds each ciphertext to its row (SEC-01): a ciphertext moved with raw SQL never reads.

张伟 sends two consultations under one e-mail: one person, one data key, two rows.  The
second time he writes as his assistant 王芳 would (another name, another company).  The
only thing that tells the two ciphertexts apart is the row id in the associated data, so
moving one onto the other row is caught by that binding and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.vault import crypto
from piwarden.vault.crypto import CiphertextInvalid, forget_cached_keys
from tests.conftest import sign_in
from tests.vault.test_vault import ad, sent

pytestmark = pytest.mark.django_db

FIRST = {"name": "张伟", "email": "zhang.wei@example.com", "company": "示例科技有限公司"}
SECOND = {"name": "王芳", "email": "zhang.wei@example.com", "company": "南方能源有限公司"}


def move_ciphertext(column: str, source: Inquiry, target: Inquiry) -> None:
    """Copy one stored ciphertext onto another row, in SQL, past every piece of our code."""
    table = connection.ops.quote_name(Inquiry._meta.db_table)
    column = connection.ops.quote_name(column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = (SELECT {column} FROM {table} WHERE reference = %s) WHERE reference = %s",  # noqa: S608  # identifiers from _meta, values bound
            [source.reference, target.reference],
        )
        assert cursor.rowcount == 1


def stored(inquiry: Inquiry, column: str) -> bytes:
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(Inquiry._meta.db_table)
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE reference = %s",  # noqa: S608  # idem
            [inquiry.reference],
        )
        (value,) = cursor.fetchone()
    return bytes(value)


@pytest.fixture
def rows(submit: Callable[..., Any]) -> tuple[Inquiry, Inquiry]:
    first = sent(submit, FIRST)
    second = sent(submit, SECOND)
    assert first.person_id == second.person_id
    assert first.data_key_id == second.data_key_id  # the same key opens both rows
    return first, second


@pytest.mark.duty("SEC-01")
def test_a_ciphertext_moved_to_another_row_fails_to_decrypt(rows: tuple[Inquiry, Inquiry]) -> None:
    first, second = rows
    move_ciphertext("name", first, second)
    moved = stored(second, "name")
    assert moved == stored(first, "name")

    forget_cached_keys()
    with pytest.raises(CiphertextInvalid):
        crypto.decrypt(second.data_key_id, moved, ad(second, "name"))
    with pytest.raises(CiphertextInvalid):
        _ = Inquiry.objects.get(pk=second.pk).name
    # The same bytes still open on the row they were made for: only the row id differs.
    assert crypto.decrypt(first.data_key_id, moved, ad(first, "name")) == "张伟"
    assert Inquiry.objects.get(pk=second.pk).company == SECOND["company"]


@pytest.mark.duty("SEC-01")
def test_the_staff_reveal_never_shows_the_moved_value(rows: tuple[Inquiry, Inquiry], alice: User, assign: Any) -> None:
    first, second = rows
    assign(second.reference, alice)  # sales see only the requests assigned to them
    move_ciphertext("name", first, second)
    staff = Client(raise_request_exception=False)
    assert sign_in(staff, alice).status_code == HTTPStatus.FOUND

    response = staff.post(
        f"/backoffice/inquiries/{second.reference}/",
        {"purpose": "respond_inquiry", "field_names": ["name", "company"], "reason": "Calling back about the quote"},
    )

    body = response.content.decode()
    assert FIRST["name"] not in body
    assert SECOND["company"] not in body
    assert response.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR  # an integrity failure, not a page of values
    assert not AuditEvent.objects.filter(event_type="pii.revealed").exists()  # nothing was shown to record
    failed = AuditEvent.objects.get(event_type="pii.reveal_failed")  # but the attempt left its trace
    assert failed.actor == alice
    assert failed.person_id == second.person_id
    assert failed.extra["refusal"] == "a stored value failed its integrity check"
    assert "完整性校验" in body  # told what happened, in the staff member's language
