"""A guardian exercises a child's rights (issue 9 §2, PIPL 31), over HTTP as a privacy officer.

The child signs up and the guardian consents through the e-mailed link, as in
tests/accounts/test_children.py; the guardian then asks through the rights portal as the guardian
of a child under 14.  Staff name the child's record and the right; the code checks that the
requester's verified address is one a guardian consented from, and only then executes the right.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client

from piwarden.audit.models import AuditEvent
from piwarden.children.models import ChildMark
from piwarden.people.models import Person
from piwarden.rights.models import ActingAs, Archive, RequestKind, RequestStatus, RightsRequest
from tests.accounts.helpers import account_of, link_in_mail, run_worker, sign_up_data
from tests.rights.mailbox import deliver, messages_to
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


def guardians_request(address: str = GUARDIAN, kind: RequestKind = RequestKind.DELETION) -> RightsRequest:
    return verified_request(address, kind=kind, acting_as=ActingAs.GUARDIAN)


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
