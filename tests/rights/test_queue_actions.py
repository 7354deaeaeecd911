"""The staff's write paths on a rights request, over HTTP as a signed-in privacy officer with TOTP
(issue 7 §2-3): assign, start, extend, refuse (with a second approval where the law does not
recognise the ground), complete; each a step the person sees, audited, e-mailed once."""

from __future__ import annotations

import datetime
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone, translation

from piwarden.audit.models import AuditEvent
from piwarden.rights import clock
from piwarden.rights.access import StaffRefused, read_status
from piwarden.rights.actions import EXTENSION_WORKING_DAYS, extend_request
from piwarden.rights.models import RequestKind, RequestStatus, RightsRequest
from tests.conftest import make_staff
from tests.rights.mailbox import deliver, messages_to
from tests.rights.staffing import act, console, verified_request

pytestmark = pytest.mark.django_db

EMAIL = "li.na@example.com"


@pytest.fixture
def dave(db, tmp_path) -> User:
    """A second privacy officer: approves what carol proposes."""
    return make_staff("dave", "privacy_officer", tmp_path)


def events(kind: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=kind).order_by("id"))


def statuses(request: RightsRequest) -> list[str]:
    return list(request.steps.values_list("status", flat=True))


def test_assign_and_start_over_http(carol, dave):
    request = verified_request()
    client = console(carol)
    response = act(client, request.reference, "assign", assignee=dave.pk)
    assert response.status_code == HTTPStatus.FOUND
    request.refresh_from_db()
    assert request.assigned_to == dave
    [assigned] = events("rights.assigned")
    assert (assigned.actor, assigned.extra["assigned_to"]) == (carol, dave.pk)
    assert act(client, request.reference, "start").status_code == HTTPStatus.FOUND
    request.refresh_from_db()
    assert request.status == RequestStatus.IN_PROGRESS
    assert statuses(request) == ["awaiting_verification", "received", "in_progress"]
    assert len(events("rights.started")) == 1
    # Starting twice is refused, nothing changes.
    assert act(client, request.reference, "start").status_code == HTTPStatus.CONFLICT
    assert statuses(request) == ["awaiting_verification", "received", "in_progress"]


@pytest.mark.duty("RGT-09")
def test_extension_before_the_due_date_adds_15_working_days_and_is_mailed_once(carol):
    request = verified_request()
    client = console(carol)
    reason = "我们需要从归档系统中调取您的资料，需要更多时间。"
    response = act(client, request.reference, "extend", reason=reason)
    assert response.status_code == HTTPStatus.FOUND
    request.refresh_from_db()
    assert request.status == RequestStatus.EXTENDED
    assert request.due_on is not None
    assert request.extended_due_on is not None
    calendar = clock.load_calendar()
    assert clock.working_days_between(request.due_on, request.extended_due_on, calendar) == EXTENSION_WORKING_DAYS
    assert request.extension_reason == reason
    mail.outbox.clear()
    deliver()
    deliver()  # a second run sends nothing more
    [sent] = messages_to(EMAIL)
    assert reason in sent.body
    assert request.extended_due_on.isoformat() in sent.body
    view = read_status(request.pk)
    assert view is not None
    assert view.steps[-1].status == RequestStatus.EXTENDED
    assert view.steps[-1].note == reason
    # Once only.
    assert act(client, request.reference, "extend", reason=reason).status_code == HTTPStatus.CONFLICT


@pytest.mark.duty("RGT-09")
def test_an_extension_after_the_original_due_date_is_refused(carol):
    request = verified_request()
    yesterday = clock.day_of_receipt(timezone.now()) - datetime.timedelta(days=1)
    RightsRequest.objects.filter(pk=request.pk).update(due_on=yesterday)
    response = act(console(carol), request.reference, "extend", reason="We need more time to search the archive.")
    assert response.status_code == HTTPStatus.CONFLICT
    assert "passed" in response.content.decode() or "已过" in response.content.decode()
    request.refresh_from_db()
    assert (request.status, request.extended_due_on) == (RequestStatus.RECEIVED, None)
    assert events("rights.extended") == []


@pytest.mark.duty("RGT-09")
def test_the_write_path_itself_refuses_a_late_extension(carol):
    """The same rule without the page (the API or a command calls the write path too)."""
    request = verified_request()
    assert request.due_on is not None
    carol.is_verified = lambda: True  # type: ignore[attr-defined]  # as django-otp's middleware marks a verified session
    with translation.override("en"), pytest.raises(StaffRefused, match="passed"):
        extend_request(
            carol, request.reference, reason="We need more time.", today=request.due_on + datetime.timedelta(days=1)
        )
    assert extend_request(carol, request.reference, reason="We need more time.", today=request.due_on)


@pytest.mark.duty("RGT-08")
def test_a_refusal_on_a_recognised_ground_names_the_reasons_and_the_routes_of_complaint(carol):
    request = verified_request(language="en")
    reasons = "The information you asked about belongs to another customer."
    response = act(console(carol), request.reference, "refuse", ground="not_own_data", reasons=reasons)
    assert response.status_code == HTTPStatus.FOUND
    request.refresh_from_db()
    assert (request.status, request.refusal_ground, request.outcome) == (RequestStatus.REFUSED, "not_own_data", reasons)
    assert request.approved_by is None
    mail.outbox.clear()
    deliver()
    [letter] = messages_to(EMAIL)
    assert reasons in letter.body
    assert "12377" in letter.body
    assert "PIPL 50" in letter.body
    assert "people's court" in letter.body
    assert statuses(request)[-1] == "refused"


@pytest.mark.duty("RGT-08")
def test_a_refusal_on_reasons_the_law_does_not_recognise_needs_another_approver(carol, dave):
    request = verified_request()
    reasons = "回答此请求需要过度的技术手段，我们无法提供。"
    carols = console(carol)
    response = act(carols, request.reference, "refuse", ground="excessive_technical_means", reasons=reasons)
    assert response.status_code == HTTPStatus.FOUND
    request.refresh_from_db()
    assert request.status == RequestStatus.RECEIVED  # the person still sees it open
    assert request.awaits_approval
    assert request.outcome in ("", None)
    mail.outbox.clear()
    deliver()
    assert messages_to(EMAIL) == []  # nothing told before the approval
    # The proposer may not approve their own refusal: refused and recorded.
    response = act(carols, request.reference, "approve")
    assert response.status_code == HTTPStatus.FORBIDDEN
    [refused] = events("rights.action_refused")
    assert (refused.actor, refused.extra["action"]) == (carol, "approve")
    request.refresh_from_db()
    assert request.awaits_approval
    # Another privacy officer approves: refused, told once.
    assert act(console(dave), request.reference, "approve").status_code == HTTPStatus.FOUND
    request.refresh_from_db()
    assert request.status == RequestStatus.REFUSED
    assert (request.refusal_ground, request.approved_by, request.outcome) == (
        "excessive_technical_means",
        dave,
        reasons,
    )
    assert not request.awaits_approval
    deliver()
    deliver()
    [letter] = messages_to(EMAIL)
    assert reasons in letter.body
    assert "12377" in letter.body
    [event] = events("rights.refused")
    assert (event.actor, event.extra["approved_by"]) == (dave, dave.pk)


def test_completion_is_mailed_once_with_the_result(carol):
    request = verified_request(kind=RequestKind.EXPLANATION)
    result = "我们按照隐私政策第一部分所述的规则处理您的咨询信息。"
    response = act(console(carol), request.reference, "complete", result=result)
    assert response.status_code == HTTPStatus.FOUND
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED
    assert request.outcome == result
    assert request.completed_at is not None
    mail.outbox.clear()
    deliver()
    deliver()
    [sent] = messages_to(EMAIL)
    assert result in sent.body
    assert request.steps.get(status="completed").mailed_at is not None
    # Closed: no further action.
    assert act(console(carol), request.reference, "start").status_code == HTTPStatus.CONFLICT


def test_bad_input_is_refused_in_the_staff_members_language_and_changes_nothing(carol):
    request = verified_request()
    response = act(console(carol), request.reference, "refuse", ground="not_own_data", reasons="")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    request.refresh_from_db()
    assert request.status == RequestStatus.RECEIVED
    assert events("rights.refused") == []


def test_a_sales_role_may_not_open_or_act_on_rights_requests(alice):
    request = verified_request()
    client = console(alice)
    assert client.get("/backoffice/rights/").status_code == HTTPStatus.NOT_FOUND
    response = act(client, request.reference, "complete", result="Done as you asked, thank you.")
    assert response.status_code == HTTPStatus.NOT_FOUND
    request.refresh_from_db()
    assert request.status == RequestStatus.RECEIVED
    refusals = events("staff.access_refused")
    assert [e.extra["page"] for e in refusals] == ["rights_queue", "rights_request"]
    assert all(e.actor == alice for e in refusals)


def test_the_write_path_refuses_and_records_a_role_without_handle_rights(alice):
    from piwarden.rights.actions import start_request  # noqa: PLC0415

    request = verified_request()
    alice.is_verified = lambda: True  # type: ignore[attr-defined]
    with pytest.raises(StaffRefused):
        start_request(alice, request.reference)
    [refused] = events("rights.action_refused")
    assert (refused.actor, refused.extra["action"]) == (alice, "start")


def propose(client, request: RightsRequest, reasons: str = "回答此请求需要过度的技术手段，我们无法提供。") -> None:
    response = act(client, request.reference, "refuse", ground="excessive_technical_means", reasons=reasons)
    assert response.status_code == HTTPStatus.FOUND


@pytest.mark.duty("RGT-08")
def test_a_second_staff_member_rejects_a_proposed_refusal_and_the_proposer_reads_why(carol, dave):
    request = verified_request()
    carols, daves = console(carol), console(dave)
    propose(carols, request)
    # The proposer may not reject their own proposal either: refused, recorded, nothing changed.
    response = act(carols, request.reference, "reject", note="我撤回这个拒绝提议，请继续处理。")
    assert response.status_code == HTTPStatus.FORBIDDEN
    [refused] = events("rights.action_refused")
    assert (refused.actor, refused.extra["action"]) == (carol, "reject")
    # A note is required: bad input, nothing changed.
    assert act(daves, request.reference, "reject", note="").status_code == HTTPStatus.BAD_REQUEST
    assert act(daves, request.reference, "reject", note="不行").status_code == HTTPStatus.BAD_REQUEST
    request.refresh_from_db()
    assert request.awaits_approval
    assert events("rights.refusal_rejected") == []

    note = "导出所需的数据都在现有系统中，并不需要过度的技术手段；请按期完成。"
    page = daves.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert 'id="reject-refusal"' in page
    assert "回答此请求需要过度的技术手段" not in page  # the proposal's reasons: read on an audited reveal
    response = act(daves, request.reference, "reveal", field_names=["proposed_reasons"], reason="Deciding on it now")
    assert "回答此请求需要过度的技术手段" in response.content.decode()
    assert act(daves, request.reference, "reject", note=note).status_code == HTTPStatus.FOUND
    request.refresh_from_db()
    assert not request.awaits_approval
    assert (request.status, request.refusal_rejected_by, request.rejected_ground) == (
        RequestStatus.IN_PROGRESS,
        dave,
        "excessive_technical_means",
    )
    assert request.rejection_note == note
    assert request.refusal_proposed_by == carol  # whom the note answers
    assert (request.outcome, request.refusal_ground, request.decided_at) in {("", "", None), (None, "", None)}
    assert statuses(request) == ["awaiting_verification", "received", "in_progress"]
    # Nothing is sent to the person, and their status page says only "in progress".
    mail.outbox.clear()
    deliver()
    assert messages_to(EMAIL) == []
    view = read_status(request.pk)
    assert view is not None
    assert view.request.status == RequestStatus.IN_PROGRESS
    assert all(note not in step.note and "技术手段" not in step.note for step in view.steps)
    # Audited: who rejected which ground, whose proposal; never the note.
    [event] = events("rights.refusal_rejected")
    assert (event.actor, event.extra["ground"], event.extra["proposed_by"]) == (
        dave,
        "excessive_technical_means",
        carol.pk,
    )
    assert note not in str(event.extra)
    assert note not in event.reason
    # The proposer sees the rejection in the back office, and reads the note on an audited reveal.
    page = carols.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert "拟拒绝已被驳回" in page
    assert "dave" in page
    assert note not in page
    response = act(
        carols, request.reference, "reveal", field_names=["rejection_note"], reason="Reading why it was rejected"
    )
    assert response.status_code == HTTPStatus.OK
    assert note in response.content.decode()
    [_, revealed] = events("pii.revealed")
    assert (revealed.actor, revealed.fields) == (carol, ["rejection_note"])
    # Nothing awaits a decision any more: approving or rejecting again is refused.
    assert act(daves, request.reference, "approve").status_code == HTTPStatus.CONFLICT
    assert act(daves, request.reference, "reject", note=note).status_code == HTTPStatus.CONFLICT
    # The request goes on: it can still be completed.
    assert (
        act(carols, request.reference, "complete", result="这是您要求的个人信息的说明。").status_code
        == HTTPStatus.FOUND
    )


def test_rejecting_a_refusal_an_extended_request_awaits_keeps_it_extended_and_english_works(carol, dave):
    request = verified_request(language="en")
    carols = console(carol)
    assert act(carols, request.reference, "extend", reason="We need to search the archive system.").status_code == 302
    propose(carols, request, reasons="It would need excessive technical means.")
    daves = console(dave)
    daves.post("/backoffice/preferences/", {"language": "en"})
    page = daves.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert "Reject the proposed refusal" in page
    assert act(daves, request.reference, "reject", note="The export exists already; answer it.").status_code == 302
    request.refresh_from_db()
    assert (request.status, request.awaits_approval) == (RequestStatus.EXTENDED, False)
    assert statuses(request)[-1] == "extended"  # no new step: it was in progress already
    page = daves.get(f"/backoffice/rights/{request.reference}/").content.decode()
    assert "Proposed refusal rejected" in page


def test_the_write_path_refuses_a_rejection_by_a_role_without_handle_rights(alice, carol):
    from piwarden.rights.actions import reject_refusal  # noqa: PLC0415

    request = verified_request()
    propose(console(carol), request)
    alice.is_verified = lambda: True  # type: ignore[attr-defined]
    with pytest.raises(StaffRefused):
        reject_refusal(alice, request.reference, note="Not a real ground for refusing this.")
    [refused] = events("rights.action_refused")
    assert (refused.actor, refused.extra["action"]) == (alice, "reject")
    request.refresh_from_db()
    assert request.awaits_approval
