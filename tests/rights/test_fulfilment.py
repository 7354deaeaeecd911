"""Completing a request executes it (issue 7 §4), over HTTP as a privacy officer: restriction set,
consent withdrawn with what rested on it deleted, values corrected, the person erased after the
completion e-mail went out.  A guardian's request executes nothing on the requester's record."""

from __future__ import annotations

import io
import zipfile
from http import HTTPStatus

import pytest
from django.test import Client
from django.utils import timezone

from piwarden.audit.models import AuditEvent
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.rights import clock
from piwarden.rights.models import ActingAs, Archive, RequestKind, RequestStatus, RightsRequest
from tests.rights.mailbox import deliver, last_code_to, messages_to
from tests.rights.staffing import act, archive_data, console, verified_request

pytestmark = pytest.mark.django_db

EMAIL = "zhang.wei@example.com"  # the consultation fixture's address: the same person


def person_of(request: RightsRequest) -> Person:
    return Person.objects.get(pk=request.person_id)


@pytest.mark.duty("RGT-01")
def test_completing_a_restriction_restricts_processing(carol):
    request = verified_request(EMAIL, kind=RequestKind.RESTRICTION)
    response = act(console(carol), request.reference, "complete", result="已按您的要求限制处理您的个人信息。")
    assert response.status_code == HTTPStatus.FOUND
    assert person_of(request).restricted_at is not None
    request.refresh_from_db()
    assert (request.status, request.fulfilled_at is not None) == (RequestStatus.COMPLETED, True)
    assert AuditEvent.objects.filter(event_type="person.restricted", actor=carol).count() == 1
    deliver()
    assert len(messages_to(EMAIL)) == 1  # the completion still reaches a restricted person


@pytest.mark.duty("RGT-05")
def test_completing_a_deletion_mails_the_person_then_erases_them(carol, submit):
    assert submit().status_code == HTTPStatus.FOUND  # a consultation by the same person
    request = verified_request(EMAIL, kind=RequestKind.DELETION)
    client = console(carol)
    response = act(client, request.reference, "complete", result="我们已删除您的个人信息。")
    assert response.status_code == HTTPStatus.FOUND
    assert not person_of(request).is_erased  # not before the e-mail
    deliver()
    [sent] = messages_to(EMAIL)
    assert "我们已删除您的个人信息。" in sent.body
    assert person_of(request).is_erased
    assert not Inquiry.objects.filter(person_id=request.person_id).exists()
    request.refresh_from_db()
    assert request.fulfilled_at is not None
    assert request.email is None  # sealed under the destroyed key: unreadable
    assert AuditEvent.objects.filter(event_type="rights.fulfilled").count() == 1
    deliver()  # nothing more to do, nothing sent again
    assert len(messages_to(EMAIL)) == 1


@pytest.mark.duty("RGT-08")
def test_completing_a_withdrawal_needs_the_purpose_and_deletes_what_rested_on_it(carol, submit):
    assert submit().status_code == HTTPStatus.FOUND
    request = verified_request(EMAIL, kind=RequestKind.WITHDRAWAL)
    client = console(carol)
    result = "已撤回您对答复咨询的同意。"
    assert act(client, request.reference, "complete", result=result).status_code == HTTPStatus.BAD_REQUEST
    assert Inquiry.objects.filter(person_id=request.person_id).exists()
    response = act(client, request.reference, "complete", result=result, purpose="respond_inquiry")
    assert response.status_code == HTTPStatus.FOUND
    assert not Inquiry.objects.filter(person_id=request.person_id).exists()
    assert AuditEvent.objects.filter(event_type="consent.withdrawn").count() == 1


@pytest.mark.duty("RGT-04")
def test_completing_a_correction_writes_the_values_staff_confirm(carol, submit):
    assert submit().status_code == HTTPStatus.FOUND
    request = verified_request(EMAIL, kind=RequestKind.CORRECTION, details="公司名称应为 新示例有限公司")
    client = console(carol)
    field = "correct__inquiries__Inquiry__company"
    page = client.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert f'name="{field}"' in page
    response = act(client, request.reference, "complete", result="已更正您的公司名称。", **{field: "新示例有限公司"})
    assert response.status_code == HTTPStatus.FOUND
    assert Inquiry.objects.get(person_id=request.person_id).company == "新示例有限公司"
    [event] = AuditEvent.objects.filter(event_type="person.corrected")
    assert event.fields == ["inquiries.Inquiry.company"]
    assert "新示例" not in str(event.extra)


def test_a_guardians_deletion_erases_nothing_of_the_requester(carol):
    request = verified_request("guardian@example.com", kind=RequestKind.DELETION)
    RightsRequest.objects.filter(pk=request.pk).update(acting_as=ActingAs.GUARDIAN)
    act(console(carol), request.reference, "complete", result="We have erased your child's records we identified.")
    deliver()
    assert not person_of(request).is_erased


@pytest.mark.duty("RGT-02")
def test_completing_an_access_request_builds_the_archive_behind_the_verified_status_page(
    carol, submit, settings, tmp_path
):
    settings.PIWARDEN_EXPORTS_DIR = tmp_path / "exports"
    assert submit().status_code == HTTPStatus.FOUND  # something to find: a consultation
    request = verified_request(EMAIL, kind=RequestKind.ACCESS, language="en")
    result = "Here is everything we hold about you, as the archive linked below."
    assert act(console(carol), request.reference, "complete", result=result).status_code == HTTPStatus.FOUND
    deliver()  # the completion e-mail and the archive's build, as the worker runs them
    archive = Archive.objects.get(person_id=request.person_id, reference=request.reference)
    assert archive.status == "ready"
    [sent] = [m for m in messages_to(EMAIL) if request.reference in m.subject]
    assert "/en/rights/status/archive/" in sent.body
    # Without the verified opening: sent to get a code.
    visitor = Client()
    assert visitor.get("/en/rights/status/archive/")["Location"].endswith("/rights/status/")
    assert visitor.get("/en/rights/status/archive/download/").status_code == HTTPStatus.FOUND
    # With a code from the status page: the page, then the zip, recorded.
    visitor.post("/en/rights/status/", {"reference": request.reference, "email": EMAIL})
    code = last_code_to(EMAIL)
    assert visitor.post("/en/rights/status/code/", {"reference": request.reference, "code": code}).status_code == 302
    page = visitor.get("/en/rights/status/archive/")
    assert page.status_code == HTTPStatus.OK
    assert "/rights/status/archive/download/" in page.content.decode()
    download = visitor.get("/en/rights/status/archive/download/")
    assert download.status_code == HTTPStatus.OK
    body = b"".join(download.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as zipped:
        assert "data.json" in zipped.namelist()
    assert AuditEvent.objects.filter(event_type="rights.archive_downloaded").count() == 1
    # Expired: not to be had any more.
    Archive.objects.filter(pk=archive.pk).update(expires_at=timezone.now())
    assert visitor.get("/en/rights/status/archive/download/").status_code == HTTPStatus.NOT_FOUND


@pytest.mark.duty("RGT-07")
def test_a_deceased_relatives_request_is_answered_once_death_relationship_and_no_arrangement_are_checked(carol):
    """PIPL 49: the relative acts for their own lawful interests unless the deceased arranged
    otherwise; staff confirm the proof of the death, of the relationship and the absence of such an
    arrangement before the answer goes out, and the audit event says that they did."""
    request = verified_request(
        "relative@example.com", kind=RequestKind.DECEASED_RELATIVE, acting_as=ActingAs.RELATIVE_OF_DECEASED
    )
    client = console(carol)
    page = client.get(f"/backoffice/rights/{request.reference}/").content.decode()
    for label in ("我已查验该人的死亡证明", "近亲属", "死者生前未就其个人信息作出排除此请求的安排"):
        assert label in page
    result = "我们已核实您的身份与关系，现答复如下。"
    refused = act(client, request.reference, "complete", result=result, proof_of_death="on", proof_of_relationship="on")
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert "请确认您已查验死亡证明和近亲属关系证明" in refused.content.decode()
    request.refresh_from_db()
    assert request.status == RequestStatus.RECEIVED
    assert not AuditEvent.objects.filter(event_type="rights.completed").exists()
    deliver()
    assert messages_to("relative@example.com") == []

    checks = {"proof_of_death": "on", "proof_of_relationship": "on", "no_other_arrangement": "on"}
    assert act(client, request.reference, "complete", result=result, **checks).status_code == HTTPStatus.FOUND
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED
    completed = AuditEvent.objects.get(event_type="rights.completed")
    assert completed.extra["executed"] == "answer; death, relationship and no other arrangement checked"
    deliver()
    [answer] = messages_to("relative@example.com")
    assert result in answer.body


CHECKED = {"proof_of_death": "on", "proof_of_relationship": "on", "no_other_arrangement": "on"}
RELATIVE = "relative@example.com"


def relatives_request() -> RightsRequest:
    return verified_request(RELATIVE, kind=RequestKind.DECEASED_RELATIVE, acting_as=ActingAs.RELATIVE_OF_DECEASED)


@pytest.mark.duty("RGT-07")
def test_a_relatives_deletion_erases_the_deceaseds_record_and_nothing_of_the_relative(carol, submit):
    """PIPL 49 executed, not only answered: the deceased's record, found by the address they used,
    is erased once the checks are confirmed; the relative's own record is untouched."""
    assert submit().status_code == HTTPStatus.FOUND  # the deceased once asked for a consultation
    deceased = Person.objects.get(inquiries__isnull=False)
    request = relatives_request()
    client = console(carol)
    answer = {"result": "We have deleted your late relative's information.", "subject_right": "deletion"}
    # The checks first, then the record: each missing one refuses and changes nothing.
    assert act(client, request.reference, "complete", subject_email=EMAIL, **answer).status_code == 400
    refused = act(client, request.reference, "complete", **CHECKED, **answer)
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert "死者使用过的电子邮箱" in refused.content.decode()
    unknown = act(client, request.reference, "complete", subject_email="nobody@example.com", **CHECKED, **answer)
    assert unknown.status_code == HTTPStatus.BAD_REQUEST
    assert "该电子邮箱下没有保存任何个人信息" in unknown.content.decode()
    own = act(client, request.reference, "complete", subject_email=RELATIVE, **CHECKED, **answer)
    assert own.status_code == HTTPStatus.BAD_REQUEST
    deceased.refresh_from_db()
    assert not deceased.is_erased
    assert not AuditEvent.objects.filter(event_type="rights.completed").exists()

    done = act(client, request.reference, "complete", subject_email=EMAIL, **CHECKED, **answer)
    assert done.status_code == HTTPStatus.FOUND
    deceased.refresh_from_db()
    assert deceased.is_erased
    assert not person_of(request).is_erased
    request.refresh_from_db()
    assert (request.subject_id, request.executed_right) == (deceased.pk, "deletion")
    assert request.fulfilled_at is not None
    completed = AuditEvent.objects.get(event_type="rights.completed")
    assert completed.extra["executed"].startswith("erasure of the deceased's record")
    assert AuditEvent.objects.filter(event_type="person.shredded", person=deceased).exists()
    deliver()
    [sent] = messages_to(RELATIVE)
    assert answer["result"] in sent.body


@pytest.mark.duty("RGT-07")
def test_a_relatives_copy_is_the_deceaseds_archive_downloaded_by_the_relative(carol, submit, settings, tmp_path):
    settings.PIWARDEN_EXPORTS_DIR = tmp_path / "exports"
    assert submit(language="en", name="Zhang Canary Wei").status_code == HTTPStatus.FOUND
    deceased = Person.objects.get(inquiries__isnull=False)
    request = relatives_request()
    result = "Here is a copy of your late relative's information."
    given = {"subject_right": "copy", "subject_email": EMAIL, **CHECKED}
    assert act(console(carol), request.reference, "complete", result=result, **given).status_code == HTTPStatus.FOUND
    deliver()  # the completion e-mail and the archive's build
    archive = Archive.objects.get(reference=request.reference)
    assert (archive.person_id, archive.status) == (deceased.pk, "ready")
    assert "Zhang Canary Wei" in archive_data(request.reference, RELATIVE)
    assert not deceased.is_erased


@pytest.mark.duty("RGT-07")
def test_a_relatives_correction_is_written_on_the_deceaseds_record(carol, submit):
    assert submit().status_code == HTTPStatus.FOUND
    deceased = Person.objects.get(inquiries__isnull=False)
    request = relatives_request()
    field = "inquiries.Inquiry.company"
    given = {"subject_right": "correction", "subject_email": EMAIL, "correct__" + field.replace(".", "__"): "新公司"}
    client = console(carol)
    page = client.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert "correct__inquiries__Inquiry__company" in page
    result = "我们已按您的要求更正了您已故亲属的信息。"
    assert act(client, request.reference, "complete", result=result, **given, **CHECKED).status_code == 302
    assert AuditEvent.objects.filter(event_type="person.corrected", person=deceased).exists()
    request.refresh_from_db()
    assert (request.subject_id, request.executed_right) == (deceased.pk, "correction")


@pytest.mark.duty("RGT-06")
def test_an_explanation_is_routed_on_the_same_clock_and_answered_in_writing(carol):
    """PIPL 48: asked and confirmed like any request, due on the 15th PRC working day after receipt,
    in the staff queue, and answered in writing: the answer is e-mailed and shown on the status page."""
    request = verified_request(
        "asker@example.com", kind=RequestKind.EXPLANATION, details="请说明贵公司如何使用咨询表单中的信息。"
    )
    received = clock.day_of_receipt(request.submitted_at)
    assert request.due_on == clock.due_date(received).date
    assert clock.working_days_between(received, request.due_on, clock.load_calendar()) == 15
    client = console(carol)
    assert request.reference in client.get("/backoffice/rights/", {"kind": "explanation"}).content.decode()
    answer = "我们仅将咨询表单中的信息用于答复您的咨询，并在规定期限后删除。"
    assert act(client, request.reference, "complete", result=answer).status_code == HTTPStatus.FOUND
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED
    assert request.outcome == answer
    deliver()
    [sent] = messages_to("asker@example.com")
    assert answer in sent.body
