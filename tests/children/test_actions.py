"""The guardian's consent and its refusal, through the write paths and the real task worker (policy §八).

The guardian's e-mail goes to a real SMTP server (the ``smtp`` fixture); the link in it is the one
the guardian follows.  The consent is a separate consent per purpose in the consent ledger, marked
as the guardian's (its channel), with the policy version and digest in force; the signal and the
``on_consent`` hook run once it has committed.  A refusal erases the child's data by its task.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from piwarden.audit.models import AuditEvent, EventType
from piwarden.children import signals
from piwarden.children.access import GuardianLinkInvalid, guardian_has_consented, is_child, open_guardian_request
from piwarden.children.actions import (
    GUARDIAN_CHANNEL,
    confirm_guardian_consent,
    decline_guardian_consent,
    request_guardian_consent,
)
from piwarden.children.models import ChildMark, GuardianRequest, GuardianRequestStatus
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.people.actions import find_or_create_person
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from tests.smtp import SMTPServer

pytestmark = pytest.mark.django_db(transaction=True)  # the worker commits and closes connections

GUARDIAN = "guardian.li@example.com"
CALLED: list[Person] = []


def on_consent(person: Person) -> None:
    """The hook a caller names (the accounts app's, at merge): called with the child once consented."""
    CALLED.append(person)


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)


def link_in(body: str) -> str:
    found = re.search(r"https?://\S+/guardian/(\S+)/", body)
    assert found, body
    return found.group(1)


def asked(language: str = "zh-hans", **kwargs: Any) -> tuple[Person, GuardianRequest]:
    child = find_or_create_person(email=f"child.{language}@example.com")
    return child, request_guardian_consent(child, GUARDIAN, language, **kwargs)


@pytest.mark.duty("CHD-01")
@pytest.mark.parametrize(("language", "words"), [("zh-hans", "监护人"), ("en", "guardian")])
def test_the_guardian_is_mailed_a_link_and_consents_separately(smtp: SMTPServer, language: str, words: str) -> None:
    CALLED.clear()
    announced: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        announced.append(kwargs)

    signals.guardian_consented.connect(receiver, dispatch_uid="test-guardian-consented")
    try:
        child, request = asked(language, purposes=["respond_inquiry"], on_consent=on_consent)
        assert is_child(child)
        assert not guardian_has_consented(child)
        assert bytes(GuardianRequest.objects.values_list("guardian_email", flat=True).get()).find(GUARDIAN.encode()) < 0
        run_worker()
        [message] = smtp.collector.to(GUARDIAN)
        assert words in message.body
        token = link_in(message.body)
        assert open_guardian_request(token).pk == request.pk

        confirm_guardian_consent(token, shown_text="I consent (as shown)", language=language)

        [consent] = ConsentRecord.objects.filter(person=child)
        declaration = load_declaration()
        assert (consent.purpose, consent.kind, consent.channel) == (
            "respond_inquiry",
            ConsentKind.SEPARATE,
            GUARDIAN_CHANNEL,
        )
        assert (consent.policy_version, consent.policy_id) == (declaration.version, declaration.digest)
        assert consent.shown_text == "I consent (as shown)"
        assert guardian_has_consented(child)
        assert [a["person"].pk for a in announced] == [child.pk]
        assert [p.pk for p in CALLED] == [child.pk]
        assert AuditEvent.objects.filter(event_type=EventType.GUARDIAN_CONSENTED, person=child).count() == 1
        # One use: the link opens nothing now, and a second answer records nothing.
        with pytest.raises(GuardianLinkInvalid):
            open_guardian_request(token)
        with pytest.raises(GuardianLinkInvalid):
            decline_guardian_consent(token)
        assert ConsentRecord.objects.filter(person=child).count() == 1
    finally:
        signals.guardian_consented.disconnect(dispatch_uid="test-guardian-consented")


@pytest.mark.duty("CHD-01")
def test_a_link_expires_and_a_new_request_replaces_the_old(smtp: SMTPServer) -> None:
    child, first = asked()
    run_worker()
    old = link_in(smtp.collector.to(GUARDIAN)[-1].body)
    second = request_guardian_consent(child, GUARDIAN, "zh-hans")
    run_worker()
    new = link_in(smtp.collector.to(GUARDIAN)[-1].body)
    first.refresh_from_db()
    assert first.status == GuardianRequestStatus.SUPERSEDED
    with pytest.raises(GuardianLinkInvalid):
        open_guardian_request(old)
    assert open_guardian_request(new).pk == second.pk
    with (
        time_machine.travel(timezone.now() + datetime.timedelta(days=8), tick=False),
        pytest.raises(GuardianLinkInvalid),
    ):
        confirm_guardian_consent(new, shown_text="late", language="zh-hans")
    assert not ConsentRecord.objects.filter(person=child).exists()
    # A forged or altered link opens nothing either.
    for forged in ("nosuchlink", new[:-2] + ("AA" if not new.endswith("AA") else "BB")):
        with pytest.raises(GuardianLinkInvalid):
            open_guardian_request(forged)


@pytest.mark.duty("CHD-04")
def test_a_refusal_is_recorded_and_the_childs_data_erased(smtp: SMTPServer) -> None:
    declined: list[Person] = []

    def receiver(person: Person, **kwargs: Any) -> None:
        declined.append(person)

    signals.guardian_declined.connect(receiver, dispatch_uid="test-guardian-declined")
    try:
        child, _request = asked()
        run_worker()
        token = link_in(smtp.collector.to(GUARDIAN)[-1].body)
        decline_guardian_consent(token)
        assert [p.pk for p in declined] == [child.pk]
        assert AuditEvent.objects.filter(event_type=EventType.GUARDIAN_DECLINED, person=child).count() == 1
        run_worker()  # the erasure task
        child.refresh_from_db()
        assert child.is_erased
        assert child.email_index is None
        assert not GuardianRequest.objects.filter(person=child).exists()
        assert not ChildMark.objects.filter(person=child).exists()
        shredded = AuditEvent.objects.get(event_type=EventType.PERSON_SHREDDED, person=child)
        assert "guardian" in shredded.reason
        assert not ConsentRecord.objects.filter(person=child).exists()
    finally:
        signals.guardian_declined.disconnect(dispatch_uid="test-guardian-declined")


def test_bad_input_to_the_request_changes_nothing() -> None:
    child = find_or_create_person(email="child.bad@example.com")
    with pytest.raises(KeyError):
        request_guardian_consent(child, GUARDIAN, "en", purposes=["no_such_purpose"])
    for address in ("not an address", "guardian@localhost", '"<b>x</b>"@example.com'):
        with pytest.raises(ValueError, match="e-mail"):
            request_guardian_consent(child, address, "en")
    with pytest.raises(ImportError):
        request_guardian_consent(child, GUARDIAN, "en", on_consent="piwarden.no.such.function")
    assert not GuardianRequest.objects.exists()
    assert not ChildMark.objects.exists()
