"""The intake's write paths, called directly: submit, verify, follow."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from piwarden.audit.models import AuditEvent
from piwarden.rights import clock
from piwarden.rights.actions import (
    CodeOutcome,
    RequestInput,
    open_status,
    send_follow_code,
    submit_request,
    verify_request,
)
from piwarden.rights.models import (
    ActingAs,
    CodePurpose,
    RequestKind,
    RequestStatus,
    RightsRequest,
    VerificationCode,
)

pytestmark = pytest.mark.django_db


def given(email: str = "li.na@example.com", kind: RequestKind = RequestKind.ACCESS) -> RequestInput:
    return RequestInput(kind=kind, email=email, details="", acting_as=ActingAs.SELF, language="zh-hans")


def the_code(request: RightsRequest, purpose: CodePurpose = CodePurpose.VERIFY) -> str:
    """The code as the e-mail would carry it (sealed on the row until the mail task sends it)."""
    code = VerificationCode.objects.filter(request=request, purpose=purpose).latest("created_at")
    assert code.sealed_code is not None
    return code.sealed_code


def test_a_submitted_request_awaits_verification_with_a_hashed_code():
    request = submit_request(given())
    assert request.status == RequestStatus.AWAITING_VERIFICATION
    code = VerificationCode.objects.get(request=request)
    assert code.purpose == CodePurpose.VERIFY
    assert code.sealed_code is not None
    assert code.sealed_code not in code.code_hash
    assert code.expires_at - code.created_at == datetime.timedelta(minutes=10)
    assert AuditEvent.objects.filter(event_type="rights.request_submitted").count() == 1


@pytest.mark.duty("RGT-09")
def test_the_right_code_receives_the_request_with_its_due_date():
    request = submit_request(given())
    check = verify_request(request.reference, the_code(request))
    assert check.outcome is CodeOutcome.OK
    request.refresh_from_db()
    assert request.status == RequestStatus.RECEIVED
    received = clock.day_of_receipt(request.submitted_at)
    assert request.received_on == received
    due = clock.due_date(received)
    assert (request.due_on, request.due_provisional) == (due.date, due.provisional)
    assert list(request.steps.values_list("status", flat=True)) == ["awaiting_verification", "received"]


@pytest.mark.duty("RGT-10")
def test_three_wrong_codes_kill_the_code_and_the_right_one_then_says_so():
    request = submit_request(given())
    right = the_code(request)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(3):
        assert verify_request(request.reference, wrong).outcome is CodeOutcome.WRONG
    assert verify_request(request.reference, right).outcome is CodeOutcome.EXHAUSTED
    request.refresh_from_db()
    assert request.status == RequestStatus.AWAITING_VERIFICATION


def test_an_expired_or_replayed_code_is_refused():
    request = submit_request(given())
    code = the_code(request)
    VerificationCode.objects.filter(request=request).update(expires_at=timezone.now())
    assert verify_request(request.reference, code).outcome is CodeOutcome.EXPIRED
    other = submit_request(given())
    code = the_code(other)
    assert verify_request(other.reference, code).ok
    assert verify_request(other.reference, code).outcome is CodeOutcome.USED


def test_following_needs_the_requesters_address():
    request = submit_request(given())
    assert verify_request(request.reference, the_code(request)).ok
    send_follow_code(request.reference, "someone.else@example.com")
    assert not VerificationCode.objects.filter(request=request, purpose=CodePurpose.FOLLOW).exists()
    send_follow_code(request.reference, "LI.NA@example.com")
    check = open_status(request.reference, the_code(request, CodePurpose.FOLLOW))
    assert check.ok
    assert check.request == request


@pytest.mark.duty("RET-02")
def test_the_sweep_deletes_unverified_requests_after_24_hours_and_expired_codes():
    from piwarden.site.actions import sweep_retention  # noqa: PLC0415

    old, young, verified = (submit_request(given(f"p{n}@example.com")) for n in range(3))
    assert verify_request(verified.reference, the_code(verified)).ok
    day_ago = timezone.now() - datetime.timedelta(hours=24, minutes=1)
    RightsRequest.objects.filter(pk__in=[old.pk, verified.pk]).update(submitted_at=day_ago)
    VerificationCode.objects.filter(request=young).update(expires_at=timezone.now())

    result = sweep_retention()
    assert result.deleted["unverified rights requests"] == 1
    assert result.deleted["expired one-time codes"] == 1
    assert set(RightsRequest.objects.values_list("pk", flat=True)) == {young.pk, verified.pk}
    assert not VerificationCode.objects.filter(request=young).exists()
    [event] = AuditEvent.objects.filter(event_type="retention.swept")
    assert event.extra["deleted"] == {"rights_requests": 1}


def test_erasure_shreds_the_values_and_keeps_the_proof_of_handling():
    from piwarden.people.actions import erase_person  # noqa: PLC0415

    request = submit_request(
        RequestInput(
            kind=RequestKind.DELETION,
            email="wu.min@example.com",
            details="Please delete everything.",
            acting_as=ActingAs.SELF,
            language="en",
        )
    )
    assert verify_request(request.reference, the_code(request)).ok
    assert erase_person(request.person, reason="Rights request " + request.reference)
    kept = RightsRequest.objects.get(pk=request.pk)
    assert (kept.email, kept.details) == (None, None)
    assert (kept.kind, kept.status, kept.reference) == ("deletion", "received", request.reference)
    assert kept.steps.count() == 2


def test_the_person_export_holds_both_rights_categories():
    from piwarden.people.registry import Section, export_person  # noqa: PLC0415
    from piwarden.policy.declaration import load_declaration  # noqa: PLC0415

    request = submit_request(given())
    assert verify_request(request.reference, the_code(request)).ok
    items = list(export_person(request.person, load_declaration(), context="test"))
    current, records = None, {}
    for item in items:
        if isinstance(item, Section):
            current = item.category
        else:
            records.setdefault(current, []).append(item)
    assert records["rights_requests"][0]["email"] == "li.na@example.com"
    assert records["rights_request_records"][0]["status"] == "received"
    assert [s["status"] for s in records["rights_request_records"][0]["steps"]] == ["awaiting_verification", "received"]


def test_send_follow_code_for_an_unknown_reference_does_nothing():
    send_follow_code("ABCDEFGHJK", "li.na@example.com")
    assert not VerificationCode.objects.exists()


@pytest.mark.duty("RGT-09")
def test_loading_a_years_schedule_redates_the_provisional_due_dates(tmp_path):
    from piwarden.rights.actions import load_schedule  # noqa: PLC0415
    from tests.conftest import make_staff  # noqa: PLC0415

    request = submit_request(given())
    RightsRequest.objects.filter(pk=request.pk).update(
        submitted_at=datetime.datetime(2026, 12, 24, 2, tzinfo=datetime.UTC)
    )
    assert verify_request(request.reference, the_code(request)).ok
    request.refresh_from_db()
    assert request.due_provisional
    weekends_only = request.due_on
    # A 2027 schedule with a week off in the middle of the count (not the real notice: a test's).
    holidays = [datetime.date(2027, 1, 1), *(datetime.date(2027, 1, d) for d in range(4, 9))]
    holidays += [datetime.date(2027, 10, d) for d in range(1, 8)]
    loaded = load_schedule(year=2027, holidays=holidays, workdays=[], by=make_staff("olga", "admin", tmp_path))
    assert loaded.requests_redated == 1
    request.refresh_from_db()
    assert not request.due_provisional
    assert request.due_on == clock.due_date(datetime.date(2026, 12, 24)).date
    assert request.due_on > weekends_only
