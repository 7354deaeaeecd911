"""A guardian exercises a child's rights (issue 9 §2, PIPL 31), over HTTP as a privacy officer.

The child signs up and the guardian consents through the e-mailed link, as in
tests/accounts/test_children.py; the guardian then asks at the rights portal (/en/rights/) as the
guardian of a child under 14 and confirms with the mailed code.  Staff name the child's record and
the right in the back office; the code checks that the requester's verified address is one a
guardian consented from, and only then executes the right.  A child whose processing is
restricted keeps their guardian: restriction limits what is done with the data, not the
guardian's right to be answered.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.core import mail
from django.test import Client

from piwarden.audit.models import AuditEvent
from piwarden.children.models import ChildMark
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.rights.models import ActingAs, Archive, RequestKind, RequestStatus, RightsRequest
from tests.accounts.helpers import account_of, link_in_mail, run_worker, sign_up_data
from tests.conftest import consultation_data
from tests.policy.test_declaration import edited
from tests.rights.mailbox import deliver, last_code_to, messages_to
from tests.rights.staffing import act, archive_data, console, verified_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.duty("CHD-05")]

CHILD = {"email": "xiao.ming@example.com", "date_of_birth": "2016-03-01", "guardian_email": "parent@example.com"}
GUARDIAN = CHILD["guardian_email"]


@pytest.fixture(autouse=True)
def _captcha_test_mode(settings):
    settings.CAPTCHA_TEST_MODE = True


def child_with_guardian() -> Person:
    """The real path: the child signs up, the guardian consents through the mailed link."""
    assert Client().post("/en/account/sign-up/", sign_up_data(**CHILD)).status_code == HTTPStatus.FOUND
    run_worker()
    link = link_in_mail(GUARDIAN, "/")
    assert Client().post(link, {"decision": "consent", "separate_consent": "on"}).status_code == HTTPStatus.OK
    child = Person.objects.get(pk=account_of(CHILD["email"]).person_id)
    assert ChildMark.objects.filter(person=child).exists()
    return child


def guardians_request(
    address: str = GUARDIAN, kind: RequestKind = RequestKind.DELETION, details: str = "我的孩子 小明，9 岁。"
) -> RightsRequest:
    """Asked at the rights portal as the guardian of a child under 14, confirmed with the mailed code."""
    visitor = Client()
    form = {"kind": kind.value, "email": address, "acting_as": ActingAs.GUARDIAN.value, "details": details}
    asked = visitor.post("/en/rights/", {**form, "captcha_0": "x", "captcha_1": "PASSED"})
    assert asked.status_code == HTTPStatus.FOUND, asked.content.decode()[:800]
    reference = asked["Location"].split("ref=")[1]
    confirmed = visitor.post("/en/rights/verify/", {"reference": reference, "code": last_code_to(address)})
    assert confirmed["Location"] == "/en/rights/received/"
    deliver()  # the receipt: the answers are the e-mails the tests look at
    mail.outbox.clear()
    return RightsRequest.objects.select_related("person").get(reference=reference)


def test_a_guardians_deletion_erases_the_childs_record_and_nothing_of_the_guardian(carol):
    child = child_with_guardian()
    request = guardians_request()
    client = console(carol)
    page = client.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert 'name="subject_right"' in page
    assert "监护人" in page  # what completing does, in the staff member's language
    answer = {"result": "我们已删除您孩子的个人信息。", "subject_right": "deletion"}
    missing = act(client, request.reference, "complete", **answer)
    assert missing.status_code == HTTPStatus.BAD_REQUEST
    assert "请填写儿童账户所用的电子邮箱" in missing.content.decode()
    own = act(client, request.reference, "complete", subject_email=GUARDIAN, **answer)
    assert own.status_code == HTTPStatus.BAD_REQUEST
    assert not AuditEvent.objects.filter(event_type="rights.completed").exists()

    done = act(client, request.reference, "complete", subject_email=CHILD["email"], **answer)
    assert done.status_code == HTTPStatus.FOUND
    child.refresh_from_db()
    assert child.is_erased
    assert not Person.objects.get(pk=request.person_id).is_erased
    request.refresh_from_db()
    assert (request.status, request.subject_id, request.executed_right) == (
        RequestStatus.COMPLETED,
        child.pk,
        "deletion",
    )
    assert request.fulfilled_at is not None
    completed = AuditEvent.objects.get(event_type="rights.completed")
    assert completed.extra["executed"] == "erasure of the child's record; guardian's consent checked"
    assert AuditEvent.objects.filter(event_type="person.shredded", person=child).exists()
    deliver()
    [sent] = messages_to(GUARDIAN)
    assert answer["result"] in sent.body


@pytest.mark.parametrize(
    ("language", "refusal"),
    [
        ("zh-CN,zh;q=0.9", "请求人不是曾为使用该电子邮箱的儿童作出同意的监护人"),
        ("en-GB,en;q=0.9", "The requester is not a guardian who consented for the child"),
    ],
)
def test_someone_not_the_childs_guardian_is_refused_and_nothing_changes(carol, language, refusal):
    child = child_with_guardian()
    stranger = guardians_request("stranger@example.com")
    client = console(carol)
    given = {
        "action": "complete",
        "result": "We have deleted your child's information.",
        "subject_right": "deletion",
        "subject_email": CHILD["email"],
    }
    response = client.post(f"/backoffice/rights/{stranger.reference}/", given, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert refusal in response.content.decode()
    child.refresh_from_db()
    assert not child.is_erased
    stranger.refresh_from_db()
    assert (stranger.status, stranger.subject_id, stranger.fulfilled_at) == (RequestStatus.RECEIVED, None, None)
    assert not AuditEvent.objects.filter(event_type="rights.completed").exists()
    # An adult's record (someone who asked us something themself) is no child's: refused alike.
    adult = verified_request("adult@example.com")
    given["subject_email"] = "adult@example.com"
    response = client.post(f"/backoffice/rights/{stranger.reference}/", given, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert refusal in response.content.decode()
    assert not Person.objects.get(pk=adult.person_id).is_erased
    deliver()
    assert messages_to("stranger@example.com") == []


def test_a_guardians_copy_is_the_childs_archive_downloaded_by_the_guardian(carol, settings, tmp_path):
    settings.PIWARDEN_EXPORTS_DIR = tmp_path / "exports"
    child = child_with_guardian()
    request = guardians_request(kind=RequestKind.COPY)
    given = {"subject_right": "copy", "subject_email": CHILD["email"]}
    result = "Here is a copy of your child's information."
    assert act(console(carol), request.reference, "complete", result=result, **given).status_code == HTTPStatus.FOUND
    deliver()  # the completion e-mail and the archive's build
    archive = Archive.objects.get(reference=request.reference)
    assert (archive.person_id, archive.status) == (child.pk, "ready")
    assert GUARDIAN in archive_data(request.reference, GUARDIAN)  # the child's record: the guardian's contact
    assert not child.is_erased


def test_a_guardians_restriction_restricts_the_childs_processing_not_the_guardians(carol):
    child = child_with_guardian()
    request = guardians_request(kind=RequestKind.RESTRICTION)
    given = {"subject_right": "restriction", "subject_email": CHILD["email"]}
    result = "已按您的要求限制处理您孩子的个人信息。"
    assert act(console(carol), request.reference, "complete", result=result, **given).status_code == HTTPStatus.FOUND
    child.refresh_from_db()
    assert child.restricted_at is not None
    assert Person.objects.get(pk=request.person_id).restricted_at is None
    request.refresh_from_db()
    assert (request.subject_id, request.executed_right) == (child.pk, "restriction")
    # The guardian's address was read through the gate, as a use recorded against the child.
    assert AuditEvent.objects.filter(person=child, actor=carol, extra__context="rights.guardian_check").exists()


def test_a_guardians_correction_is_written_to_the_childs_account_and_not_to_the_guardians_record(carol):
    child = child_with_guardian()
    request = guardians_request(kind=RequestKind.CORRECTION, details="我孩子 小明 账户的手机号码应为 13912345678。")
    client = console(carol)
    page = client.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert 'name="correct__accounts__Account__phone"' in page
    given = {"subject_right": "correction", "subject_email": CHILD["email"]}
    result = "已按您的要求更正您孩子账户的手机号码。"
    corrected = act(
        client, request.reference, "complete", result=result, correct__accounts__Account__phone="13912345678", **given
    )
    assert corrected.status_code == HTTPStatus.FOUND, corrected.content.decode()[:800]
    assert account_of(CHILD["email"]).phone == "+8613912345678"
    request.refresh_from_db()
    assert (request.status, request.subject_id, request.executed_right) == (
        RequestStatus.COMPLETED,
        child.pk,
        "correction",
    )
    corrected_event = AuditEvent.objects.get(event_type="person.corrected")
    assert corrected_event.person_id == child.pk
    assert corrected_event.person_id != request.person_id
    deliver()
    assert [m for m in messages_to(GUARDIAN) if result in m.body]


def test_a_guardians_withdrawal_withdraws_the_childs_consent_and_deletes_what_rested_on_it_alone(carol):
    child = child_with_guardian()
    # The child later asked us something from the address of their account (ticking the age statement).
    assert Client().post("/consultation/", consultation_data(email=CHILD["email"])).status_code == HTTPStatus.FOUND
    assert Inquiry.objects.filter(person=child).exists()
    request = guardians_request(kind=RequestKind.WITHDRAWAL, details="撤回我孩子 小明 提交咨询时给予的同意。")
    given = {"subject_right": "withdrawal", "subject_email": CHILD["email"]}
    result = "已撤回对答复您孩子咨询的同意，并删除了该咨询。"
    client = console(carol)
    unnamed = act(client, request.reference, "complete", result=result, **given)
    assert unnamed.status_code == HTTPStatus.BAD_REQUEST  # which consent: staff must say
    done = act(client, request.reference, "complete", result=result, purpose="respond_inquiry", **given)
    assert done.status_code == HTTPStatus.FOUND, done.content.decode()[:800]
    assert not Inquiry.objects.filter(person=child).exists()  # held on that consent alone
    consents = ConsentRecord.objects.filter(person=child, purpose="respond_inquiry")
    assert consents.exists()
    assert not consents.filter(withdrawn_at__isnull=True).exists()
    assert account_of(CHILD["email"]).person_id == child.pk  # the account rests on the contract: kept
    request.refresh_from_db()
    assert (request.subject_id, request.executed_right) == (child.pk, "withdrawal")
    withdrawn = AuditEvent.objects.get(event_type="consent.withdrawn")
    assert (withdrawn.person_id, withdrawn.extra["reference"]) == (child.pk, request.reference)


@pytest.mark.parametrize("kind", [RequestKind.COPY, RequestKind.DELETION])
def test_a_restricted_childs_guardian_is_still_their_guardian(carol, settings, tmp_path, kind):
    """The guardian restricted the child's processing; their next request is answered as a guardian's."""
    settings.PIWARDEN_EXPORTS_DIR = tmp_path / "exports"
    child = child_with_guardian()
    restriction = guardians_request(kind=RequestKind.RESTRICTION)
    given = {"subject_email": CHILD["email"]}
    restricted = act(
        console(carol),
        restriction.reference,
        "complete",
        result="已按您的要求限制处理您孩子的个人信息。",
        subject_right="restriction",
        **given,
    )
    assert restricted.status_code == HTTPStatus.FOUND
    child.refresh_from_db()
    assert child.is_restricted

    request = guardians_request(kind=kind)
    done = act(
        console(carol),
        request.reference,
        "complete",
        result="已按您的要求处理您孩子的个人信息。",
        subject_right=kind.value,
        **given,
    )
    assert done.status_code == HTTPStatus.FOUND, done.content.decode()[:800]
    request.refresh_from_db()
    assert (request.status, request.subject_id, request.executed_right) == (RequestStatus.COMPLETED, child.pk, kind)
    child.refresh_from_db()
    if kind == RequestKind.DELETION:
        assert child.is_erased
    else:
        deliver()  # the completion e-mail and the archive's build
        assert Archive.objects.get(reference=request.reference).person_id == child.pk
        assert GUARDIAN in archive_data(request.reference, GUARDIAN)


# The declaration's answering of rights requests, made to stop at a restriction (the next purpose follows it).
STOPS_AT_RESTRICTION = (
    'survives_restriction = true\n\n[[purposes]]\nid = "legal_hold"',
    'survives_restriction = false\n\n[[purposes]]\nid = "legal_hold"',
)


def test_where_answering_stops_at_a_restriction_staff_read_the_gates_reason_not_that_the_requester_is_no_guardian(
    carol, declared
):
    """Another company's declaration may let a restriction stop the answering of rights requests: the
    check of the guardian is then refused by the gate, which says nothing about who the requester is."""
    child = child_with_guardian()
    restriction = guardians_request(kind=RequestKind.RESTRICTION)
    given = {"subject_email": CHILD["email"], "result": "已按您的要求限制处理您孩子的个人信息。"}
    restricted = act(console(carol), restriction.reference, "complete", subject_right="restriction", **given)
    assert restricted.status_code == HTTPStatus.FOUND
    request = guardians_request(kind=RequestKind.DELETION)
    declared(edited(STOPS_AT_RESTRICTION))
    response = act(console(carol), request.reference, "complete", subject_right="deletion", **given)
    assert response.status_code == HTTPStatus.FORBIDDEN
    page = response.content.decode()
    assert "该个人已要求限制处理其个人信息" in page  # the gate's reason, in the staff member's language
    assert "请求人不是曾为使用该电子邮箱的儿童作出同意的监护人" not in page
    child.refresh_from_db()
    assert not child.is_erased
