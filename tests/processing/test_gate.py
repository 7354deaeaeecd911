"""The processing gate (DESIGN invariant 2), through its one entry point, with 张伟's real request.

The gate refuses every use of 张伟's data that her consent or a legal basis does not cover,
records each refusal and each use of a non-consent basis, and takes the consent a write path
gives in the same act only after her own choices (erased, restricted) have been checked.
"""

from __future__ import annotations

import functools
from http import HTTPStatus
from typing import Any

import pytest
from django.utils import timezone

from piwarden.audit.models import AuditEvent
from piwarden.consent.actions import record_consent, withdraw_consent
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.people.actions import find_or_create_person, shred_person
from piwarden.people.models import Person
from piwarden.processing import gate
from piwarden.processing.gate import Decision, ProcessingRefused


def decide(person: Person, purpose: str, category: str, *, separate: bool = False) -> Decision:
    """The gate's answer through its one entry point (a refusal is recorded, as for any caller)."""
    try:
        with gate.processing(person, purpose, categories={category}, use=gate.Use("test"), separate=separate) as permit:
            return permit.decision
    except ProcessingRefused as refused:
        return refused.decision


@pytest.fixture
def zhang(db: None, submit: Any) -> Person:
    """张伟 sent a consultation request through the form and agreed to `respond_inquiry`."""
    response = submit()
    assert response.status_code == HTTPStatus.FOUND
    return Inquiry.objects.get().person


def refusals(person: Person) -> list[tuple[str, str]]:
    return list(
        AuditEvent.objects.filter(event_type="processing.refused", person=person).values_list("purpose", "reason")
    )


def test_active_consent_allows_its_purpose(zhang):
    with gate.processing(zhang, "respond_inquiry", categories={"consultation"}, use=gate.Use("test")) as permit:
        assert permit.person == zhang
        assert permit.consent is None  # nothing given in this act
    decision = permit.decision
    assert (decision.purpose, decision.basis, decision.reason) == ("respond_inquiry", "consent", "active consent")
    # Consent needs no basis record; only the non-consent bases do (CON-01).
    assert not AuditEvent.objects.filter(event_type="processing.basis").exists()


@pytest.mark.duty("CON-04")
def test_after_withdrawal_the_purpose_is_refused_with_a_reason(zhang):
    assert withdraw_consent(zhang, "respond_inquiry", channel="web:privacy") == 1
    with (
        pytest.raises(ProcessingRefused) as refused,
        gate.processing(zhang, "respond_inquiry", categories={"consultation"}, use=gate.Use("reply e-mail")),
    ):
        pytest.fail("the body of a refused use never runs")
    assert not refused.value.decision
    assert refused.value.decision.reason == "no active consent for this purpose"
    assert "no active consent" in str(refused.value)
    assert refusals(zhang) == [("respond_inquiry", "no active consent for this purpose")]


@pytest.mark.duty("RGT-01")
def test_a_restricted_person_is_refused(zhang):
    Person.objects.filter(pk=zhang.pk).update(restricted_at=timezone.now())
    zhang.refresh_from_db()
    decision = decide(zhang, "respond_inquiry", "consultation")
    assert not decision
    assert decision.reason == "the person has restricted processing of their data"
    assert refusals(zhang) == [("respond_inquiry", "the person has restricted processing of their data")]
    # Security survives restriction (PIPL 47 para 2), under its statutory basis.
    assert decide(zhang, "security", "rate_limit_counters")


def test_a_restriction_made_after_the_caller_loaded_the_person_is_seen(zhang):
    stale = Person.objects.get(pk=zhang.pk)  # loaded before the restriction, as a page or task may
    Person.objects.filter(pk=zhang.pk).update(restricted_at=timezone.now())
    decision = decide(stale, "respond_inquiry", "consultation")
    assert not decision
    assert decision.reason == "the person has restricted processing of their data"


def test_an_erased_person_is_refused(zhang):
    shred_person(zhang, reason="erasure request")
    zhang.refresh_from_db()
    for purpose, category in (("respond_inquiry", "consultation"), ("security", "rate_limit_counters")):
        decision = decide(zhang, purpose, category)
        assert not decision
        assert decision.reason == "the person's data has been erased"


@pytest.mark.duty("CON-03")
def test_an_undeclared_purpose_is_refused(zhang):
    decision = decide(zhang, "marketing", "consultation")
    assert not decision
    assert decision.reason == "the purpose is not declared in the privacy policy"
    assert refusals(zhang) == [("marketing", "the purpose is not declared in the privacy policy")]


@pytest.mark.duty("CON-01")
def test_a_non_consent_basis_allows_and_is_recorded(zhang):
    use = gate.Use("rate-limit review")
    with gate.processing(zhang, "security", categories={"rate_limit_counters"}, use=use) as permit:
        assert permit.decision.basis == "statutory_duty"

    event = AuditEvent.objects.get(event_type="processing.basis")
    assert event.person_id == zhang.pk
    assert event.purpose == "security"
    assert event.reason == "legal basis: statutory_duty"
    assert event.extra == {"context": "rate-limit review", "category": "rate_limit_counters", "basis": "statutory_duty"}


@pytest.mark.duty("CON-03")
def test_consent_to_an_earlier_definition_of_the_purpose_is_refused(zhang):
    ConsentRecord.objects.filter(person=zhang).update(purpose_hash="x" * 64)
    decision = decide(zhang, "respond_inquiry", "consultation")
    assert not decision
    assert "purpose changed" in decision.reason
    assert "consent must be asked again" in decision.reason


@pytest.mark.duty("CON-06")
def test_ordinary_consent_does_not_pass_a_separate_consent_gate(zhang):
    assert decide(zhang, "respond_inquiry", "consultation")
    decision = decide(zhang, "respond_inquiry", "consultation", separate=True)
    assert not decision
    assert decision.reason == "no active separate consent for this purpose"

    record_consent(
        zhang,
        "respond_inquiry",
        channel="web:test",
        language="zh-hans",
        shown_text="单独同意",
        kind=ConsentKind.SEPARATE,
    )
    assert decide(zhang, "respond_inquiry", "consultation", separate=True)


# -- the consent given in the same act --------------------------------------------------------

GIVEN = gate.GivenConsent(channel="web:test", language="zh-hans", shown_text="我同意")


@pytest.mark.duty("CON-04")
def test_consent_given_in_the_act_is_recorded_and_answers_for_the_purpose(zhang):
    assert withdraw_consent(zhang, "respond_inquiry", channel="web:privacy") == 1
    with gate.processing(
        zhang, "respond_inquiry", categories={"consultation"}, use=gate.Use("t"), consent=GIVEN
    ) as permit:
        assert permit.decision.allowed
        assert permit.consent is not None
    record = ConsentRecord.objects.get(pk=permit.consent.pk)
    assert (record.channel, record.shown_text, record.kind) == ("web:test", "我同意", ConsentKind.ORDINARY)
    assert decide(zhang, "respond_inquiry", "consultation")  # and it is the person's active consent now


@pytest.mark.duty("RGT-01")
def test_consent_given_in_the_act_does_not_override_a_restriction(zhang):
    """The restriction is checked before the act's consent counts: the same rule as everywhere."""
    Person.objects.filter(pk=zhang.pk).update(restricted_at=timezone.now())
    zhang.refresh_from_db()
    before = ConsentRecord.objects.count()
    with (
        pytest.raises(ProcessingRefused) as refused,
        gate.processing(zhang, "respond_inquiry", categories={"consultation"}, use=gate.Use("t"), consent=GIVEN),
    ):
        pytest.fail("the body of a refused use never runs")
    assert refused.value.decision.reason == "the person has restricted processing of their data"
    assert ConsentRecord.objects.count() == before  # a refused act leaves no consent behind
    assert refusals(zhang) == [("respond_inquiry", "the person has restricted processing of their data")]


@pytest.mark.duty("CON-06")
def test_ordinary_consent_given_in_the_act_does_not_pass_a_separate_consent_gate(zhang):
    with (
        pytest.raises(ProcessingRefused) as refused,
        gate.processing(
            zhang, "respond_inquiry", categories={"consultation"}, use=gate.Use("t"), separate=True, consent=GIVEN
        ),
    ):
        pytest.fail("never reached")
    assert refused.value.decision.reason == "no active separate consent for this purpose"


def test_a_person_found_in_the_act_is_found_in_the_gates_transaction(db: None):
    """A person created for a use that then fails is rolled back with it: one act, one transaction."""
    find = functools.partial(find_or_create_person, email="wang.fang@example.com")
    with (
        pytest.raises(ZeroDivisionError),
        gate.processing(find, "respond_inquiry", categories={"consultation"}, use=gate.Use("t"), consent=GIVEN),
    ):
        _ = 1 / 0
    assert not Person.objects.exists()
    assert not ConsentRecord.objects.exists()
    assert not AuditEvent.objects.exists()

    with gate.processing(
        find, "respond_inquiry", categories={"consultation"}, use=gate.Use("t"), consent=GIVEN
    ) as permit:
        pass
    assert Person.objects.get() == permit.person
    assert ConsentRecord.objects.get().person_id == permit.person.pk
    assert list(AuditEvent.objects.order_by("id").values_list("event_type", flat=True)) == [
        "person.created",
        "consent.given",
    ]


# --- processing about nobody stored yet (a child's sign-up awaiting the guardian, CHD-01) ---------


TEST = gate.Use("test")


def uses_about_nobody() -> list[tuple[str, str, str]]:
    rows = AuditEvent.objects.filter(person__isnull=True, event_type__startswith="processing.")
    return [(e.event_type, e.purpose, e.extra.get("refusal", e.reason)) for e in rows.order_by("seq")]


@pytest.mark.duty("CON-01")
def test_a_use_about_nobody_under_a_legal_basis_is_allowed_and_recorded_about_nobody(db: None):
    use = gate.Use("test.guardian_mail", fields=("guardian_email",))
    with gate.unattributed("children_protection", categories={"guardian_contacts"}, use=use) as permit:
        assert gate.permit_in_force() is permit
        assert permit.decision.basis == "statutory_duty"
    assert gate.permit_in_force() is None
    event = AuditEvent.objects.get(event_type="processing.basis")
    assert event.person_id is None
    assert (event.purpose, event.fields) == ("children_protection", ["guardian_email"])
    assert event.extra == {"context": "test.guardian_mail", "category": "guardian_contacts", "basis": "statutory_duty"}


@pytest.mark.duty("CON-03")
@pytest.mark.parametrize(
    ("purpose", "category", "reason"),
    [
        ("respond_inquiry", "consultation", "the purpose rests on consent, and no stored person could have given it"),
        (
            "children_protection",
            "consultation",
            "the privacy policy does not declare this purpose for this category of data",
        ),
        ("marketing", "guardian_contacts", "the purpose is not declared in the privacy policy"),
    ],
)
def test_a_use_about_nobody_is_refused_where_no_basis_covers_it_and_the_refusal_is_recorded(
    db: None, purpose, category, reason
):
    with pytest.raises(ProcessingRefused) as refused, gate.unattributed(purpose, categories={category}, use=TEST):
        pytest.fail("the body ran")
    assert refused.value.decision.reason == reason
    assert uses_about_nobody() == [("processing.refused", purpose, reason)]


def test_a_use_about_nobody_that_fails_leaves_no_record(db: None):
    with (
        pytest.raises(RuntimeError),
        gate.unattributed("children_protection", categories={"guardian_contacts"}, use=TEST),
    ):
        raise RuntimeError("the mail could not be rendered")
    assert uses_about_nobody() == []


# --- several people in one pass (gate.Each): each decided and recorded as if asked alone --------------


def person_who_consented(email: str) -> Person:
    person = find_or_create_person(email=email)
    record_consent(person, "respond_inquiry", channel="web:test", language="zh-hans", shown_text="同意")
    return person


@pytest.mark.duty("RGT-01")
@pytest.mark.duty("CON-04")
def test_several_people_are_decided_in_one_pass_each_as_alone(zhang):
    consenting = person_who_consented("li.na@example.com")
    withdrawn = person_who_consented("chen.jie@example.com")
    withdraw_consent(withdrawn, "respond_inquiry", channel="web:privacy")
    restricted = person_who_consented("liu.yang@example.com")
    Person.objects.filter(pk=restricted.pk).update(restricted_at=timezone.now())
    erased = person_who_consented("zhao.lei@example.com")
    shred_person(erased, reason="erasure request")  # as the cessation erases everyone on its date
    people = [zhang, consenting, withdrawn, restricted, erased]
    use = gate.Use("test.each")
    with gate.processing(
        gate.Each([p.pk for p in people]), "respond_inquiry", categories={"consultation"}, use=use
    ) as permits:
        assert set(permits.by_person) == {zhang.pk, consenting.pk}
        assert zhang.pk in permits
        assert withdrawn.pk not in permits
        assert permits.by_person[zhang.pk].decision.reason == "active consent"
    # Each refusal is the one the person would have met alone, recorded alone.
    assert refusals(withdrawn) == [("respond_inquiry", "no active consent for this purpose")]
    assert refusals(restricted) == [("respond_inquiry", "the person has restricted processing of their data")]
    assert refusals(erased) == [("respond_inquiry", "the person's data has been erased")]
    assert refusals(zhang) == refusals(consenting) == []
    for person in people[2:]:
        assert decide(person, "respond_inquiry", "consultation").reason == refusals(person)[0][1]


def test_several_people_under_a_legal_basis_each_leave_their_basis_record(zhang):
    other = find_or_create_person(email="li.na@example.com")
    use = gate.Use("rate-limit review")
    with gate.processing(gate.Each({zhang.pk, other.pk}), "security", categories={"rate_limit_counters"}, use=use):
        pass
    recorded = AuditEvent.objects.filter(event_type="processing.basis").values_list("person_id", "reason")
    assert sorted(recorded) == sorted(
        [(zhang.pk, "legal basis: statutory_duty"), (other.pk, "legal basis: statutory_duty")]
    )


def test_a_refusal_among_several_outlives_the_bodys_failure(zhang):
    """The body runs for those allowed; its failure rolls back its own writes and the basis records
    of the allowed, never the refusals (as one person's refusal is committed before the caller hears)."""
    restricted = find_or_create_person(email="liu.yang@example.com")
    Person.objects.filter(pk=restricted.pk).update(restricted_at=timezone.now())
    use = gate.Use("rate-limit review")

    def fail() -> None:
        with gate.processing(
            gate.Each({zhang.pk, restricted.pk}), "respond_inquiry", categories={"consultation"}, use=use
        ):
            Inquiry.objects.all().delete()
            raise RuntimeError("the write failed")

    with pytest.raises(RuntimeError, match="the write failed"):
        fail()
    assert Inquiry.objects.exists()  # the body's write went with its failure
    assert refusals(restricted) == [("respond_inquiry", "the person has restricted processing of their data")]


def test_several_people_read_in_one_statement(zhang, django_assert_num_queries):
    others = [find_or_create_person(email=f"p{i}@example.com") for i in range(6)]
    ids = [zhang.pk, *(p.pk for p in others)]
    use = gate.Use("rate-limit review")
    # The person rows (locked) and the basis records: two statements, however many people (in the
    # test's transaction, the gate's own is a savepoint: two more).
    for asked in (ids[:2], ids):
        with (
            django_assert_num_queries(4),
            gate.processing(gate.Each(asked), "security", categories={"rate_limit_counters"}, use=use) as permits,
        ):
            assert len(permits) == len(asked)


def test_no_consent_is_given_for_several_people_at_once(zhang):
    given = gate.GivenConsent(channel="web:test", language="zh-hans", shown_text="同意")
    with pytest.raises(ValueError, match="one person in one act"):
        gate.processing(
            gate.Each({zhang.pk}), "respond_inquiry", categories={"consultation"}, use=gate.Use("t"), consent=given
        )  # type: ignore[call-overload]
