"""The consent ledger keeps its promises (CON-02, CON-04).

* Giving consent (through the consultation form) writes ``consent.given`` for that person
  and purpose; withdrawing it writes ``consent.withdrawn``, in the same transaction.
* The record carries the policy version and the declaration's digest in force when the
  person ticked the box: a later policy version is recorded as that version, not the first.

Withdrawal has no page yet: ``withdraw_consent`` is its interface (the rights portal and
the staff console will call it), so the tests call it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.consent.actions import withdraw_consent
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from tests.policy.test_declaration import edited, policy_dir

pytestmark = pytest.mark.django_db

PURPOSE = "respond_inquiry"
ZHANG = {"name": "张伟", "email": "zhang.wei@example.com"}
LI = {"name": "李娜", "email": "li.na@example.com", "phone": "13900139000"}


@pytest.fixture
def zhang(submit: Callable[..., Any]) -> Person:
    assert submit(**ZHANG).status_code == HTTPStatus.FOUND
    return Person.objects.get()


@pytest.fixture
def newer_policy(settings: Any, tmp_path: Path) -> Iterator[Callable[[], None]]:
    """Publish version 1.1 of the declaration (the same purposes, a new version and digest)."""

    def publish() -> None:
        settings.POLICY_DIR = policy_dir(tmp_path, edited(('version = "1.0"', 'version = "1.1"')))
        load_declaration.cache_clear()

    yield publish
    load_declaration.cache_clear()  # before pytest-django restores POLICY_DIR: the next load reads the real one


@pytest.mark.duty("CON-02")
def test_giving_consent_through_the_form_is_audited(zhang: Person) -> None:
    record = ConsentRecord.objects.get()
    given = AuditEvent.objects.get(event_type="consent.given")
    assert given.person_id == zhang.pk
    assert given.purpose == PURPOSE
    assert given.actor_kind == "visitor"
    assert given.extra["consent"] == str(record.pk)
    assert given.extra["policy_version"] == record.policy_version
    assert verify_chain() is None


@pytest.mark.duty("CON-04")
def test_withdrawing_consent_is_audited_with_the_person_and_purpose(zhang: Person) -> None:
    before = AuditEvent.objects.count()

    assert withdraw_consent(zhang, PURPOSE, channel="web:privacy") == 1

    assert ConsentRecord.objects.get().withdrawn_at is not None
    withdrawn = AuditEvent.objects.get(event_type="consent.withdrawn")
    assert AuditEvent.objects.count() == before + 1
    assert withdrawn.person_id == zhang.pk
    assert withdrawn.purpose == PURPOSE
    assert withdrawn.actor_kind == "visitor"
    assert withdrawn.extra == {"channel": "web:privacy", "records": 1}
    assert verify_chain() is None


@pytest.mark.duty("CON-04")
def test_a_withdrawal_and_its_audit_event_commit_or_roll_back_together(zhang: Person) -> None:
    def withdraw_then_fail() -> None:
        with transaction.atomic():
            withdraw_consent(zhang, PURPOSE, channel="web:privacy")
            raise RuntimeError("the caller's transaction fails after the withdrawal")

    with pytest.raises(RuntimeError):
        withdraw_then_fail()
    assert ConsentRecord.objects.get().withdrawn_at is None
    assert not AuditEvent.objects.filter(event_type="consent.withdrawn").exists()


def test_withdrawing_nothing_records_nothing(zhang: Person) -> None:
    assert withdraw_consent(zhang, "security", channel="web:privacy") == 0
    assert not AuditEvent.objects.filter(event_type="consent.withdrawn").exists()


@pytest.mark.duty("CON-02")
def test_the_consent_record_carries_the_policy_version_and_digest_in_force(
    submit: Callable[..., Any], newer_policy: Callable[[], None]
) -> None:
    assert submit(**ZHANG).status_code == HTTPStatus.FOUND
    first = load_declaration()
    newer_policy()
    assert submit(**LI).status_code == HTTPStatus.FOUND
    second = load_declaration()
    assert (first.version, second.version) == ("1.0", "1.1")
    assert first.digest != second.digest

    by_email = {
        inquiry.email: ConsentRecord.objects.get(person=inquiry.person_id)
        for inquiry in Inquiry.objects.select_related("person")
    }
    for email, declaration in ((ZHANG["email"], first), (LI["email"], second)):
        record = by_email[email]
        assert record.policy_version == declaration.version
        assert record.policy_id == declaration.digest
        assert record.purpose_hash == declaration.purpose_fingerprint(PURPOSE)
        assert declaration.version in record.shown_text  # the box the person ticked named the same version
