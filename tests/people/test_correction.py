"""Correction (PIPL 46; policy §六): a declared field gets its new value in every row of the person's that
holds it, and the look-up digest where the field has one; the new value passes the form's own
validation, or the correction is refused whole with the form's message in the person's language; the
audit names fields and counts rows, never a value.
"""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.people.actions import CorrectionRefused, correct_person_data, erase_person
from piwarden.people.models import Person
from piwarden.processing.gate import ProcessingRefused
from piwarden.vault import blind
from tests.conftest import consultation_data

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("RGT-04")]

REFERENCE = "R-2026-0101"
NEW_PHONE = "13912345678"
NEW_EMAIL = "Zhang.Wei@Example.org"


@pytest.fixture
def zhang(client) -> Person:
    """Two requests from one person (one e-mail), with different phone numbers."""
    assert client.post("/consultation/", consultation_data()).status_code == HTTPStatus.FOUND
    assert client.post("/consultation/", consultation_data(phone="13700137000")).status_code == HTTPStatus.FOUND
    return Person.objects.get()


def test_a_field_is_corrected_in_every_row_and_its_look_up_digest_with_it(zhang, carol):
    done = correct_person_data(zhang, {"inquiries.Inquiry.phone": NEW_PHONE}, by=carol, reference=REFERENCE)

    assert done.changed == {"inquiries.Inquiry.phone": 2}
    assert done.indexes == ["phone_index"]
    assert {i.phone for i in Inquiry.objects.all()} == {"+86" + NEW_PHONE}  # normalised as the form does
    assert Person.objects.get(phone_index=blind.phone_index(NEW_PHONE)).pk == zhang.pk
    assert not Person.objects.filter(phone_index=blind.phone_index("13800138000")).exists()

    event = AuditEvent.objects.get(event_type="person.corrected")
    assert (event.person_id, event.actor_id, event.fields) == (zhang.pk, carol.pk, ["inquiries.Inquiry.phone"])
    assert event.extra == {
        "reference": REFERENCE,
        "rows_changed": {"inquiries.Inquiry.phone": 2},
        "rows_unchanged": {"inquiries.Inquiry.phone": 0},
        "indexes": ["phone_index"],
    }
    recorded = json.dumps([e.extra for e in AuditEvent.objects.all()]) + "".join(
        e.reason for e in AuditEvent.objects.all()
    )
    assert NEW_PHONE not in recorded
    assert "13800138000" not in recorded
    assert verify_chain() is None


def test_the_e_mail_is_corrected_and_the_person_is_found_by_the_new_one(zhang):
    done = correct_person_data(
        zhang, {"inquiries.Inquiry.email": NEW_EMAIL, "inquiries.Inquiry.name": "张 伟"}, by=None, reference=REFERENCE
    )

    assert done.changed == {"inquiries.Inquiry.email": 2, "inquiries.Inquiry.name": 2}
    assert {i.email for i in Inquiry.objects.all()} == {NEW_EMAIL.lower()}
    assert {i.name for i in Inquiry.objects.all()} == {"张 伟"}
    assert Person.objects.get(email_index=blind.email_index(NEW_EMAIL)).pk == zhang.pk
    assert AuditEvent.objects.get(event_type="person.corrected").actor_kind == "visitor"
    # Correcting to what is held changes nothing, and says so in the counts.
    again = correct_person_data(zhang, {"inquiries.Inquiry.name": "张 伟"}, by=None, reference=REFERENCE)
    assert (again.changed, again.unchanged) == ({"inquiries.Inquiry.name": 0}, {"inquiries.Inquiry.name": 2})


@pytest.mark.parametrize(
    ("language", "changes", "message"),
    [
        ("zh-hans", {"inquiries.Inquiry.phone": "12345"}, "电话号码无效"),
        ("en", {"inquiries.Inquiry.phone": "12345"}, "This is not a valid phone number"),
        ("en", {"inquiries.Inquiry.name": "<script>"}, "A name may contain letters"),
        ("en", {"inquiries.Inquiry.email": "x@localhost"}, "full domain name"),
        ("en", {"inquiries.Inquiry.region": "XX"}, "Select a valid choice"),
        ("en", {"inquiries.Inquiry.product": "data"}, "not personal information the privacy policy declares"),
        ("en", {"people.Person.created_at": "2020-01-01"}, "cannot be corrected"),
    ],
)
def test_a_bad_value_refuses_the_whole_correction_in_the_persons_language(zhang, language, changes, message):
    before = sorted((i.pk, i.name, i.phone, i.email, i.region) for i in Inquiry.objects.all())
    with pytest.raises(CorrectionRefused) as refused:
        correct_person_data(
            zhang, {"inquiries.Inquiry.company": "新公司", **changes}, by=None, reference=REFERENCE, language=language
        )
    assert message in " ".join(m for messages in refused.value.errors.values() for m in messages)
    assert "inquiries.Inquiry.company" not in refused.value.errors  # the good change is not the problem...
    assert sorted((i.pk, i.name, i.phone, i.email, i.region) for i in Inquiry.objects.all()) == before  # ...nor made
    assert {i.company for i in Inquiry.objects.all()} == {"示例科技有限公司"}
    assert not AuditEvent.objects.filter(event_type="person.corrected").exists()
    assert "12345" not in str(refused.value)  # no value in the exception's message


def test_a_correction_names_what_to_correct(zhang):
    with pytest.raises(CorrectionRefused, match="Say which information"):
        correct_person_data(zhang, {}, by=None, reference=REFERENCE, language="en")


def test_another_persons_e_mail_is_refused_without_saying_it_is_known(zhang, client):
    assert client.post("/consultation/", consultation_data(email="li.na@example.com")).status_code == 302
    with pytest.raises(CorrectionRefused, match="cannot be recorded for you here"):
        correct_person_data(
            zhang, {"inquiries.Inquiry.email": "li.na@example.com"}, by=None, reference=REFERENCE, language="en"
        )
    assert Person.objects.get(pk=zhang.pk).email_index == blind.email_index("zhang.wei@example.com")
    assert {i.email for i in Inquiry.objects.filter(person=zhang)} == {"zhang.wei@example.com"}
    assert not AuditEvent.objects.filter(event_type="person.corrected").exists()


def test_an_erased_person_is_not_corrected(zhang):
    erase_person(zhang, reason="Asked by phone on 2026-12-01")
    with pytest.raises(ProcessingRefused, match="erased"):
        correct_person_data(zhang, {"inquiries.Inquiry.phone": NEW_PHONE}, by=None, reference=REFERENCE)
    assert not AuditEvent.objects.filter(event_type="person.corrected").exists()
