"""Purpose binding: a purpose may touch only the categories the declaration lists it for.

The declaration says which purposes each category of data serves; the consultation form tells
visitors their details are used only to answer them.  Two guards keep that promise: start-up
refuses a role granted a purpose for a category that does not declare it, and the gate refuses
a (purpose, category) pair the declaration does not list, whoever asks.  Both are walked here
over every role, purpose and category of the real declaration (the read path's walk is in
tests/inquiries/test_access.py).
"""

from __future__ import annotations

import copy
import itertools
import tomllib
from http import HTTPStatus
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.consent.actions import withdraw_consent
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.policy.declaration import DeclarationError, LegalBasis, load_declaration, validate_declaration
from piwarden.processing import gate
from tests.policy.test_declaration import REAL_TEXT
from tests.processing.test_gate import decide

DECLARATION = load_declaration()
RAW = tomllib.loads(REAL_TEXT)
TRIPLES = list(
    itertools.product([r.id for r in DECLARATION.roles], [p.id for p in DECLARATION.purposes], DECLARATION.categories)
)


def granting(role_id: str, purpose: str, category: str) -> dict[str, Any]:
    """The real declaration, with one role granted exactly (category, purpose)."""
    raw = copy.deepcopy(RAW)
    (role,) = [r for r in raw["roles"] if r["id"] == role_id]
    role["reveal"] = {category: [purpose]}
    return raw


@pytest.mark.duty("CON-03")
def test_the_validator_accepts_a_grant_exactly_where_the_category_declares_the_purpose():
    accepted, refused = 0, 0
    for role, purpose, category in TRIPLES:
        raw = granting(role, purpose, category.id)
        if purpose in category.purposes:
            assert validate_declaration(raw, source="t").role(role).may_reveal(category.id, purpose)
            accepted += 1
            continue
        with pytest.raises(DeclarationError) as problem:
            validate_declaration(raw, source="t")
        assert str(problem.value) == (
            f"t: roles.{role}.reveal.{category.id}: grants purpose {purpose!r}, which category "
            f"{category.id!r} does not declare (categories.{category.id}.purposes = {category.purposes})"
        )
        refused += 1
    # The walk covered both outcomes for every role (the check could not pass by refusing all).
    assert accepted == len(DECLARATION.roles) * sum(len(c.purposes) for c in DECLARATION.categories)
    assert refused == len(TRIPLES) - accepted


def test_the_real_declaration_grants_no_role_more_than_its_categories_declare():
    """The reported fault: the privacy officer could reveal consultation data for `security`."""
    for role in DECLARATION.roles:
        for category, purposes in role.reveal.items():
            assert set(purposes) <= set(DECLARATION.category(category).purposes), (role.id, category)
    assert DECLARATION.role("privacy_officer").purposes_for(["consultation"]) == ["respond_inquiry"]


@pytest.fixture
def zhang(db: None, submit: Any) -> Person:
    """张伟 sent a consultation request and agreed to `respond_inquiry`, as the form asks."""
    assert submit().status_code == HTTPStatus.FOUND
    return Inquiry.objects.get().person


@pytest.mark.duty("CON-03")
def test_the_gate_allows_a_purpose_only_for_the_categories_that_declare_it(zhang):
    for purpose, category in itertools.product(DECLARATION.purposes, DECLARATION.categories):
        decision = decide(zhang, purpose.id, category.id)
        # 张伟 consented to `respond_inquiry`; the other consent-based purposes he never agreed to
        # (visitor_history rests on a cookie choice, not a consent record); the rest rest on a statutory basis.
        consented = purpose.legal_basis is not LegalBasis.CONSENT or purpose.id == "respond_inquiry"
        allowed = purpose.id in category.purposes and consented
        assert decision.allowed == allowed, (purpose.id, category.id, decision)
        if purpose.id not in category.purposes:
            assert decision.reason == "the privacy policy does not declare this purpose for this category of data"
        elif not consented:
            assert decision.reason == "no active consent for this purpose"
    assert not decide(zhang, "respond_inquiry", "no_such_category")


@pytest.mark.duty("RGT-01")
def test_security_does_not_reach_a_restricted_persons_consultation_data(zhang):
    """`security` survives restriction, so binding it to its own categories is what keeps it off the rest."""
    Person.objects.filter(pk=zhang.pk).update(restricted_at=timezone.now())
    zhang.refresh_from_db()
    assert decide(zhang, "security", "rate_limit_counters")
    use = gate.Use("staff.reveal", fields=("name",))
    with (
        pytest.raises(gate.ProcessingRefused) as refused,
        gate.processing(zhang, "security", categories={"consultation"}, use=use),
    ):
        pytest.fail("the body of a refused use never runs")
    assert refused.value.decision.category == "consultation"
    event = AuditEvent.objects.get(event_type="processing.refused")
    assert (event.purpose, event.fields, event.extra["category"]) == ("security", ["name"], "consultation")


def test_a_use_of_several_categories_needs_every_one_to_allow_it(zhang):
    with (
        pytest.raises(gate.ProcessingRefused) as refused,
        gate.processing(
            zhang, "respond_inquiry", categories={"consultation", "rate_limit_counters"}, use=gate.Use("t")
        ),
    ):
        pytest.fail("the body of a refused use never runs")
    assert refused.value.decision.category == "rate_limit_counters"


@pytest.mark.django_db(transaction=True)
def test_a_refusal_is_committed_before_the_caller_hears_of_it(submit):
    """The gate's record of a refusal cannot be rolled back by its caller (DESIGN invariant 2)."""
    assert submit().status_code == HTTPStatus.FOUND
    person = Inquiry.objects.get().person
    assert withdraw_consent(person, "respond_inquiry", channel="test") == 1
    use = gate.Use("reply e-mail")

    # A caller cannot hold the gate inside a transaction of its own, which it might roll back.
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():  # noqa: SIM117  # the order is the test
        with gate.processing(person, "respond_inquiry", categories={"consultation"}, use=use):
            pytest.fail("never reached")
    assert not AuditEvent.objects.filter(event_type="processing.refused").exists()

    with (
        pytest.raises(gate.ProcessingRefused),
        gate.processing(person, "respond_inquiry", categories={"consultation"}, use=use),
    ):
        pytest.fail("the body of a refused use never runs")
    assert not connection.in_atomic_block  # no transaction left open: the refusal is committed
    assert AuditEvent.objects.filter(event_type="processing.refused", person=person).count() == 1

    # An allowed use whose body fails takes its own record back with it: nothing was used.
    with (
        pytest.raises(ZeroDivisionError),
        gate.processing(person, "security", categories={"rate_limit_counters"}, use=gate.Use("t")),
    ):
        _ = 1 / 0
    assert not AuditEvent.objects.filter(event_type="processing.basis").exists()
    assert verify_chain() is None
