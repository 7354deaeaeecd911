"""The guardian's consent and its refusal, through the write paths and the real task worker (policy §八).

The guardian's e-mail goes to a real SMTP server (the ``smtp`` fixture); the link in it is the one
the guardian follows.  The consent is a separate consent per purpose in the consent ledger, marked
as the guardian's (its channel), with the policy version and digest in force; the signal and the
``on_consent`` hook run once it has committed.  A refusal erases the child's data by its task.
"""

from __future__ import annotations

import datetime
import io
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
from piwarden.children.models import ChildMark, GuardianRequest
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.people.actions import find_or_create_person
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.vault.blind import email_index
from piwarden.vault.models import DataKey
from tests.smtp import SMTPServer

pytestmark = pytest.mark.django_db(transaction=True)  # the worker commits and closes connections

GUARDIAN = "guardian.li@example.com"
CALLED: list[Person] = []


def on_consent(sealed: dict[str, str]) -> Person:
    """The hook a caller names (the accounts app's ``open_child_account``): creates the child's data
    from the sealed sign-up once the guardian consents."""
    person = find_or_create_person(email=sealed["email"])
    CALLED.append(person)
    return person


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)


def link_in(body: str) -> str:
    found = re.search(r"https?://\S+/guardian/(\S+)/", body)
    assert found, body
    return found.group(1)


def asked(language: str = "zh-hans", **kwargs: Any) -> tuple[str, GuardianRequest]:
    child = f"child.{language}@example.com"
    kwargs.setdefault("on_consent", on_consent)
    return child, request_guardian_consent({"email": child}, GUARDIAN, language, **kwargs)


def person_of(address: str) -> Person:
    return Person.objects.get(email_index=email_index(address))


@pytest.mark.duty("CHD-01")
@pytest.mark.parametrize(("language", "words"), [("zh-hans", "监护人"), ("en", "guardian")])
def test_the_guardian_is_mailed_a_link_and_consents_separately(smtp: SMTPServer, language: str, words: str) -> None:
    CALLED.clear()
    announced: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        announced.append(kwargs)

    signals.guardian_consented.connect(receiver, dispatch_uid="test-guardian-consented")
    try:
        address, request = asked(language, purposes=["respond_inquiry"])
        # Nothing of the child before the guardian consents (CHD-01): no person, sealed values only.
        assert not Person.objects.exists()
        assert request.person_id is None
        for sealed in GuardianRequest.objects.values_list("guardian_email", "sign_up").get():
            assert GUARDIAN.encode() not in bytes(sealed)
            assert address.encode() not in bytes(sealed)
        run_worker()
        [message] = smtp.collector.to(GUARDIAN)
        assert words in message.body
        token = link_in(message.body)
        assert open_guardian_request(token).pk == request.pk

        confirm_guardian_consent(token, shown_text="I consent (as shown)", language=language)

        child = person_of(address)
        assert is_child(child)
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
        # The request is the child's now: the guardian's address under the child's key, the sign-up
        # and the request's own key destroyed.
        answered = GuardianRequest.objects.get()
        assert (answered.person_id, answered.data_key_id) == (child.pk, child.data_key_id)
        assert (answered.guardian_email, answered.sign_up) == (GUARDIAN, None)
        assert DataKey.objects.get(pk=request.data_key_id).is_destroyed
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
@pytest.mark.duty("CHD-04")
def test_an_unanswered_request_expires_and_the_housekeeping_destroys_it(smtp: SMTPServer, settings: Any) -> None:
    """After 7 days unanswered the link opens nothing, and the housekeeping destroys the request's
    key (the child's sealed sign-up and the guardian's address with it) and deletes it, audited."""
    _address, request = asked()
    run_worker()
    token = link_in(smtp.collector.to(GUARDIAN)[-1].body)
    assert open_guardian_request(token).pk == request.pk
    # A forged or altered link opens nothing.
    for forged in ("nosuchlink", token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        with pytest.raises(GuardianLinkInvalid):
            open_guardian_request(forged)
    settings.PIWARDEN_RETENTION_CLOCK_SKEW = 24 * 30  # a week travelled: not a clock that jumped
    call_command("housekeeping", once=True, stdout=io.StringIO())  # not yet expired: kept
    assert GuardianRequest.objects.filter(pk=request.pk).exists()
    later = timezone.now() + datetime.timedelta(days=7, minutes=1)
    with time_machine.travel(later, tick=False):
        with pytest.raises(GuardianLinkInvalid):
            confirm_guardian_consent(token, shown_text="late", language="zh-hans")
        call_command("housekeeping", once=True, stdout=io.StringIO())
    assert not GuardianRequest.objects.exists()
    assert DataKey.objects.get(pk=request.data_key_id).is_destroyed
    assert not Person.objects.exists()
    assert not ConsentRecord.objects.exists()
    event = AuditEvent.objects.get(event_type=EventType.GUARDIAN_REQUEST_EXPIRED)
    assert (event.person_id, event.extra["request"]) == (None, str(request.pk))
    swept = AuditEvent.objects.filter(event_type=EventType.RETENTION_SWEPT).latest("id")
    assert swept.extra["deleted"]["child_sign_ups_awaiting_guardian"] == 1


@pytest.mark.duty("CHD-04")
def test_a_refusal_is_recorded_and_the_childs_sign_up_destroyed(smtp: SMTPServer) -> None:
    declined: list[Any] = []

    def receiver(person: Person | None, **kwargs: Any) -> None:
        declined.append(person)

    CALLED.clear()
    signals.guardian_declined.connect(receiver, dispatch_uid="test-guardian-declined")
    try:
        _address, request = asked()
        run_worker()
        token = link_in(smtp.collector.to(GUARDIAN)[-1].body)
        decline_guardian_consent(token)
        assert declined == [None]
        event = AuditEvent.objects.get(event_type=EventType.GUARDIAN_DECLINED)
        assert (event.person_id, event.extra["request"]) == (None, str(request.pk))
        assert not GuardianRequest.objects.exists()
        assert DataKey.objects.get(pk=request.data_key_id).is_destroyed
        assert not Person.objects.exists()
        assert not ConsentRecord.objects.exists()
        assert CALLED == []  # the hook that would have created the child's data never ran
        with pytest.raises(GuardianLinkInvalid):
            confirm_guardian_consent(token, shown_text="too late", language="zh-hans")
    finally:
        signals.guardian_declined.disconnect(dispatch_uid="test-guardian-declined")


def test_bad_input_to_the_request_changes_nothing() -> None:
    sign_up = {"email": "child.bad@example.com"}
    with pytest.raises(KeyError):
        request_guardian_consent(sign_up, GUARDIAN, "en", purposes=["no_such_purpose"], on_consent=on_consent)
    for address in ("not an address", "guardian@localhost", '"<b>x</b>"@example.com'):
        with pytest.raises(ValueError, match="e-mail"):
            request_guardian_consent(sign_up, address, "en", on_consent=on_consent)
    with pytest.raises(ImportError):
        request_guardian_consent(sign_up, GUARDIAN, "en", on_consent="piwarden.no.such.function")
    assert not GuardianRequest.objects.exists()
    assert not ChildMark.objects.exists()
    assert not DataKey.objects.exists()
