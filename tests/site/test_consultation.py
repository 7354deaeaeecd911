"""The consultation request (policy §一(I)1.1), through the real form."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from piwarden.audit.models import AuditEvent
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from tests.conftest import consultation_data
from tests.processing.test_gate import decide

pytestmark = pytest.mark.django_db


def test_it_stores_the_request_encrypted_with_consent(submit):
    response = submit()
    assert response.status_code == HTTPStatus.FOUND
    inquiry = Inquiry.objects.get()
    assert response["Location"].startswith("/consultation/received/?ref=" + inquiry.reference)
    assert inquiry.name == "张伟"
    assert inquiry.phone == "+8613800138000"  # stored as E.164
    assert inquiry.email == "zhang.wei@example.com"
    raw = Inquiry.objects.filter(pk=inquiry.pk).values_list("name", "email", "company").get()
    for ciphertext, plain in zip(raw, ["张伟", "zhang.wei@example.com", "示例科技有限公司"], strict=True):
        assert plain.encode() not in bytes(ciphertext)


@pytest.mark.duty("CON-02")
def test_the_consent_record_proves_what_was_shown(submit):
    submit()
    record = ConsentRecord.objects.get()
    declaration = load_declaration()
    assert record.purpose == "respond_inquiry"
    assert record.policy_version == declaration.version
    assert record.policy_id == declaration.digest
    assert record.purpose_hash == declaration.purpose_fingerprint("respond_inquiry")
    assert record.channel == "web:consultation"
    assert record.language == "zh-hans"
    assert "隐私政策" in record.shown_text
    assert declaration.version in record.shown_text


def test_english_form_records_english_consent(submit):
    response = submit(language="en")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/en/consultation/received/")
    record = ConsentRecord.objects.get()
    assert record.language == "en"
    assert "Privacy Policy" in record.shown_text


@pytest.mark.duty("CON-02")
def test_without_consent_nothing_is_stored(submit):
    response = submit(consent=None)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "请勾选" in response.content.decode()
    assert not Inquiry.objects.exists()
    assert not Person.objects.exists()
    assert not ConsentRecord.objects.exists()


@pytest.mark.duty("CON-02")
def test_the_consent_box_is_not_pre_ticked(client):
    body = client.get("/consultation/").content.decode()
    checkbox = body[body.index('name="consent"') - 200 : body.index('name="consent"') + 200]
    assert "checked" not in checkbox


def test_two_requests_with_one_email_belong_to_one_person(submit):
    submit(email="Same.Person@Example.com")
    submit(email="same.person@example.com", name="Li Na")
    assert Inquiry.objects.count() == 2
    assert Person.objects.count() == 1


def test_a_replayed_form_creates_nothing_new(client):
    data = consultation_data()
    first = client.post("/consultation/", data)
    second = client.post("/consultation/", data)
    assert Inquiry.objects.count() == 1
    assert second.status_code == HTTPStatus.FOUND
    assert "again=1" in second["Location"]
    page = client.get(second["Location"])
    assert first["Location"].split("&")[0] in second["Location"]
    assert "已收到" in page.content.decode()


@pytest.mark.django_db(transaction=True)  # the worker closes its connection between tasks
def test_the_acknowledgement_is_sent_once_by_the_worker(submit, settings):
    submit()
    inquiry = Inquiry.objects.get()
    assert inquiry.acknowledged_at is None  # nothing is sent inside the request
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)
    inquiry.refresh_from_db()
    assert inquiry.acknowledged_at is not None
    to_person = [m for m in mail.outbox if m.to == ["zhang.wei@example.com"]]
    to_sales = [m for m in mail.outbox if m.to == [settings.PIWARDEN_SALES_EMAIL]]
    assert len(to_person) == 1
    assert inquiry.reference in to_person[0].subject
    assert len(to_sales) == 1
    assert "张伟" not in to_sales[0].body
    assert "zhang.wei" not in to_sales[0].body
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)
    assert len([m for m in mail.outbox if m.to == ["zhang.wei@example.com"]]) == 1


def test_every_step_is_audited(submit):
    submit()
    types = list(AuditEvent.objects.values_list("event_type", flat=True))
    assert types == ["person.created", "consent.given", "inquiry.submitted"]
    submitted = AuditEvent.objects.get(event_type="inquiry.submitted")
    assert set(submitted.fields) == {"name", "phone", "email", "company", "industry", "position", "region"}
    assert "张伟" not in str(submitted.extra)


@pytest.mark.duty("RGT-01")
def test_a_restricted_person_is_refused_and_the_refusal_is_kept(submit):
    submit()
    person = Person.objects.get()
    Person.objects.filter(pk=person.pk).update(restricted_at=timezone.now())
    response = submit(name="Zhang Wei")
    assert response.status_code == HTTPStatus.CONFLICT
    assert "限制" in response.content.decode()
    assert Inquiry.objects.count() == 1
    assert ConsentRecord.objects.count() == 1
    refusal = AuditEvent.objects.get(event_type="processing.refused")
    assert refusal.person_id == person.pk
    person.refresh_from_db()
    # Storage and security survive restriction.
    assert decide(person, "security", "rate_limit_counters").allowed
    assert not decide(person, "respond_inquiry", "consultation").allowed


@pytest.mark.duty("CHD-01")
@pytest.mark.parametrize(
    ("language", "statement", "why"),
    [
        ("zh-hans", "我已年满 14 周岁，或者我的父母或其他监护人已同意我提交此请求。", "为什么需要确认"),
        ("en", "I am 14 or older, or my parent or guardian has agreed to this request.", "Why we ask"),
    ],
)
def test_the_age_statement_is_asked_with_its_reason_and_stored_as_shown(client, submit, language, statement, why):
    page = client.get("/en/consultation/" if language == "en" else "/consultation/").content.decode()
    assert statement in page
    assert why in page
    assert 'name="age_confirmed"' in page
    assert submit(language).status_code == 302
    assert Inquiry.objects.get().age_statement == statement
