"""A person made by a rights request they never confirmed (rights-rest, issue 7 §1).

Asking at ``/rights/`` creates the person of the e-mail given (their blind index and a data key)
before the code is typed.  The housekeeping deletes a request never confirmed after 24 hours; the
person it named must then not stay behind as a look-up of who once asked: erased, through the
erasure path (erasers, crypto-shredding, the ledger), unless something else holds them.
"""

from __future__ import annotations

import datetime
import io
from http import HTTPStatus
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.people import ledger
from piwarden.people.models import Person
from piwarden.rights.models import RightsRequest
from piwarden.site.housekeeping import UNHELD_ERASURE_REASON
from piwarden.vault import blind
from piwarden.vault.models import DataKey
from tests.conftest import consultation_data
from tests.rights.mailbox import deliver, last_code_to

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def erasure_ledger(settings: Any, tmp_path):
    settings.PIWARDEN_ERASURE_LEDGER = tmp_path / "erasures.ledger"
    return settings.PIWARDEN_ERASURE_LEDGER


def ask(client: Client, email: str, **overrides: str) -> RightsRequest:
    data = {
        "kind": "access",
        "email": email,
        "acting_as": "self",
        "details": "",
        "captcha_0": "x",
        "captcha_1": "PASSED",
    }
    response = client.post("/rights/", {**data, **overrides})
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:500]
    return RightsRequest.objects.get(reference=response["Location"].split("ref=")[1])


def age(*requests: RightsRequest) -> None:
    """As if sent 24 hours and a minute ago."""
    ago = timezone.now() - datetime.timedelta(hours=24, minutes=1)
    RightsRequest.objects.filter(pk__in=[r.pk for r in requests]).update(submitted_at=ago)


def sweep() -> str:
    out = io.StringIO()
    call_command("housekeeping", "--once", stdout=out, stderr=out)
    return out.getvalue()


def test_a_person_only_an_expired_unverified_request_held_is_erased_with_it(client):
    email = "wu.fang@example.com"
    request = ask(client, email)
    deliver()  # the code went out; it is never typed
    person = Person.objects.get(pk=request.person_id)
    assert person.email_index == blind.email_index(email)
    age(request)

    sweep()

    assert not RightsRequest.objects.filter(pk=request.pk).exists()
    person.refresh_from_db()
    assert person.is_erased
    assert (person.email_index, person.phone_index) == (None, None)  # no look-up of who once asked
    assert DataKey.objects.get(pk=person.data_key_id).is_destroyed
    [shredded] = AuditEvent.objects.filter(event_type="person.shredded", person_id=person.pk)
    assert (shredded.actor, shredded.actor_kind, shredded.reason) == (None, "system", UNHELD_ERASURE_REASON)
    assert email not in str(shredded.extra)
    assert [e.person for e in ledger.entries()] == [person.pk]  # a restore replays it
    [swept] = AuditEvent.objects.filter(event_type="retention.swept")
    assert swept.extra["deleted"] == {"rights_requests": 1}
    # Asking again starts from nothing: a new person, the old one stays erased.
    again = ask(client, email)
    assert again.person_id != person.pk
    # A second sweep finds nothing more to do.
    sweep()
    assert AuditEvent.objects.filter(event_type="person.shredded").count() == 1


def test_a_person_something_else_holds_is_kept(client):
    # A consultation (the inquiry and its consent) by one person, an unverified request by the same address.
    assert client.post("/consultation/", consultation_data()).status_code == HTTPStatus.FOUND
    consulted = ask(client, "zhang.wei@example.com")
    # Another person with a confirmed request, then an unconfirmed one.
    confirmed = ask(client, "sun.li@example.com")
    client.post("/rights/verify/", {"reference": confirmed.reference, "code": last_code_to("sun.li@example.com")})
    confirmed.refresh_from_db()
    assert confirmed.verified_at is not None
    later = ask(client, "sun.li@example.com")
    # A third with two unconfirmed requests, one of them still young.
    old, young = ask(client, "qian.yu@example.com"), ask(client, "qian.yu@example.com")
    assert old.person_id == young.person_id
    age(consulted, later, old)

    sweep()

    assert set(RightsRequest.objects.values_list("pk", flat=True)) == {confirmed.pk, young.pk}
    for kept in (consulted, later, old):
        person = Person.objects.get(pk=kept.person_id)
        assert not person.is_erased, (kept.reference, [consulted.reference, later.reference, old.reference])
        assert person.email_index is not None
    assert Inquiry.objects.filter(person_id=consulted.person_id).exists()
    assert not AuditEvent.objects.filter(event_type="person.shredded").exists()
    assert list(ledger.entries()) == []
    # Once the young one expires too, nothing holds that person any more.
    age(young)
    sweep()
    assert Person.objects.get(pk=young.person_id).is_erased


def test_without_the_ledger_nothing_is_deleted_and_the_next_sweep_tries_again(client, settings, tmp_path):
    request = ask(client, "zhou.min@example.com")
    age(request)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    settings.PIWARDEN_ERASURE_LEDGER = blocked / "erasures.ledger"

    out = io.StringIO()
    with pytest.raises(CommandError, match="not every job ran"):
        call_command("housekeeping", "--once", stdout=out, stderr=out)

    assert "unverified rights requests: failed" in out.getvalue()
    assert RightsRequest.objects.filter(pk=request.pk).exists()  # kept, to be swept again
    assert not Person.objects.get(pk=request.person_id).is_erased
    settings.PIWARDEN_ERASURE_LEDGER = tmp_path / "erasures.ledger"
    sweep()
    assert not RightsRequest.objects.filter(pk=request.pk).exists()
    assert Person.objects.get(pk=request.person_id).is_erased
