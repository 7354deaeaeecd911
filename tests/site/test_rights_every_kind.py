"""Every kind of rights request end to end over HTTP (issue 7, tests): asked at /rights/, confirmed
with the code from the e-mail, seen in the staff queue (complaints too), completed by a privacy
officer in the console, executed, e-mailed, and followed by the person on the status page."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.rights.models import Archive, RequestKind, RequestStatus, RightsRequest
from tests.conftest import consultation_data
from tests.rights.mailbox import deliver, last_code_to, messages_to
from tests.rights.staffing import act, console

pytestmark = pytest.mark.django_db

# What each kind needs from the person (details, on whose behalf) and from staff on completion.
ASKED: dict[str, dict[str, str]] = {
    RequestKind.CORRECTION: {"details": "公司名称应为 新示例有限公司"},
    RequestKind.WITHDRAWAL: {"details": "撤回对答复咨询的同意"},
    RequestKind.COMPLAINT: {"details": "隐私政策中的联系方式已过期。"},
    RequestKind.DECEASED_RELATIVE: {"acting_as": "close_relative_of_deceased", "details": "我已故的父亲 张三"},
}
COMPLETED_WITH: dict[str, dict[str, str]] = {
    RequestKind.CORRECTION: {"correct__inquiries__Inquiry__company": "新示例有限公司"},
    RequestKind.WITHDRAWAL: {"purpose": "respond_inquiry"},
    RequestKind.DECEASED_RELATIVE: {
        "proof_of_death": "on",
        "proof_of_relationship": "on",
        "no_other_arrangement": "on",
    },
}
# The kinds whose own duty this test proves besides RGT-08: asked, confirmed, routed on the same
# clock and answered in writing.
KIND_DUTIES = {RequestKind.EXPLANATION: "RGT-06", RequestKind.DECEASED_RELATIVE: "RGT-07"}


def flat(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture(autouse=True)
def exports(settings, tmp_path):
    settings.PIWARDEN_EXPORTS_DIR = tmp_path / "exports"


def ask_and_confirm(client: Client, kind: RequestKind, email: str) -> str:
    """The request asked at /rights/ and confirmed with the mailed code: its reference."""
    form = {"kind": kind.value, "email": email, "acting_as": "self", "details": "", **ASKED.get(kind, {})}
    response = client.post("/rights/", {**form, "captcha_0": "x", "captcha_1": "PASSED"})
    assert response.status_code == HTTPStatus.FOUND, flat(response)[:800]
    reference = response["Location"].split("ref=")[1]
    response = client.post("/rights/verify/", {"reference": reference, "code": last_code_to(email)})
    assert response["Location"] == "/rights/received/"
    assert reference in flat(client.get("/rights/received/"))
    return reference


def assert_executed(kind: RequestKind, request: RightsRequest, company: str) -> None:
    """What completing ``kind`` changed of the person's record."""
    person = Person.objects.get(pk=request.person_id)
    inquiry = Inquiry.objects.filter(person_id=person.pk).first()
    if kind == RequestKind.DELETION:
        assert person.is_erased
        assert inquiry is None
    elif kind == RequestKind.RESTRICTION:
        assert person.is_restricted
    elif kind == RequestKind.WITHDRAWAL:
        assert inquiry is None  # held on that consent only
    elif kind == RequestKind.CORRECTION:
        assert inquiry is not None
        assert inquiry.company == "新示例有限公司"
    elif kind in {RequestKind.ACCESS, RequestKind.COPY}:
        assert Archive.objects.get(reference=request.reference).status == "ready"
    else:  # a written answer: nothing of the record changes
        assert inquiry is not None
        assert inquiry.company == company


@pytest.mark.duty("RGT-08")
@pytest.mark.parametrize(
    "kind",
    [pytest.param(k, marks=pytest.mark.duty(KIND_DUTIES[k])) if k in KIND_DUTIES else k for k in RequestKind],
)
def test_every_kind_is_asked_confirmed_queued_completed_executed_and_followed(carol, kind):
    email = f"{kind.value.replace('_', '.')}@example.com"
    consultation = consultation_data(email=email)  # something to act on, by the same address
    assert Client().post("/consultation/", consultation).status_code == HTTPStatus.FOUND
    reference = ask_and_confirm(Client(), kind, email)
    request = RightsRequest.objects.get(reference=reference)
    assert request.status == RequestStatus.RECEIVED

    # In the staff queue, under its kind (a complaint like any other request).
    staff = console(carol)
    queue = flat(staff.get("/backoffice/rights/", {"kind": kind.value}))
    assert reference in queue
    result = f"已办结您的请求 {reference}，详见说明。"
    response = act(staff, reference, "complete", result=result, **COMPLETED_WITH.get(kind, {}))
    assert response.status_code == HTTPStatus.FOUND, flat(response)[:800]
    deliver()  # the completion e-mail, then what runs after it (an archive, an erasure)
    [completion] = [m for m in messages_to(email) if reference in m.subject and result in m.body]
    assert completion.to == [email]
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED
    assert_executed(kind, request, consultation["company"])

    # The person follows it: reference and address, a code, the status with the result.
    follower = Client()
    assert follower.post("/rights/status/", {"reference": reference, "email": email}).status_code == 302
    if kind == RequestKind.DELETION:
        # Erased: the address finds nobody any more, no code is sent, nothing is shown.
        before = len(messages_to(email))
        deliver()
        assert len(messages_to(email)) == before
        assert follower.get("/rights/status/view/").status_code == HTTPStatus.FOUND
        return
    response = follower.post("/rights/status/code/", {"reference": reference, "code": last_code_to(email)})
    assert response["Location"] == "/rights/status/view/"
    page = flat(follower.get("/rights/status/view/"))
    assert result in page
    assert "已办结" in page


@pytest.mark.parametrize("kind", [RequestKind.ACCESS, RequestKind.DELETION, RequestKind.CORRECTION])
def test_a_guardian_for_a_child_under_14_is_answered_in_writing_and_nothing_of_theirs_is_executed(carol, kind):
    """The guardian's address names the guardian, not the child: staff identify the child's records
    themselves; completing executes nothing on the requester's record (no archive of the guardian's
    data, no erasure, no correction), and the answer reaches the guardian."""
    email = "guardian.wang@example.com"
    consultation = consultation_data(email=email)  # the guardian's own consultation
    assert Client().post("/consultation/", consultation).status_code == HTTPStatus.FOUND
    guardian = Client()
    form = {"kind": kind.value, "email": email, "acting_as": "guardian_of_child_under_14", "details": ""}
    refused = guardian.post("/rights/", {**form, "captcha_0": "x", "captcha_1": "PASSED"})
    assert refused.status_code == HTTPStatus.BAD_REQUEST  # whom they act for must be said
    assert not RightsRequest.objects.exists()
    form["details"] = "我的女儿 王小明，9 岁，曾用本邮箱提交过咨询。"
    response = guardian.post("/rights/", {**form, "captcha_0": "x", "captcha_1": "PASSED"})
    reference = response["Location"].split("ref=")[1]
    assert guardian.post("/rights/verify/", {"reference": reference, "code": last_code_to(email)}).status_code == 302

    result = "我们已核实您的监护人身份，并处理了您孩子的个人信息。"
    response = act(console(carol), reference, "complete", result=result, **COMPLETED_WITH.get(kind, {}))
    assert response.status_code == HTTPStatus.FOUND
    deliver()
    request = RightsRequest.objects.get(reference=reference)
    assert (request.status, request.fulfilled_at) == (RequestStatus.COMPLETED, None)
    assert not Archive.objects.exists()
    person = Person.objects.get(pk=request.person_id)
    assert not person.is_erased
    assert Inquiry.objects.get(person_id=person.pk).company == consultation["company"]
    assert [m.to for m in messages_to(email) if result in m.body] == [[email]]
    page = flat(guardian.get("/rights/status/view/"))
    assert result in page
    assert "archive-link" not in page
