"""A refusal by a risk rule, cited and reviewed by a person (PIPL 24; policy §一(I)1.2), through the
real pages: the refusal page's reference, the review form, the security role's decision, and the
person submitting again once the refusal is lifted."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from django.test import Client

from piwarden.audit.models import AuditEvent, EventType
from piwarden.inquiries.models import Inquiry
from piwarden.security.models import Refusal, ReviewOutcome, Rule
from tests.conftest import consultation_data, make_staff, sign_in

pytestmark = pytest.mark.django_db

ADDRESS = "198.51.100.41"
REFERENCE = re.compile(r'<strong class="reference" id="reference">([2-9A-HJ-NP-Z]{10})</strong>')


def refused_reference(response) -> str:
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS, response.content.decode()[:300]
    found = REFERENCE.search(response.content.decode())
    assert found, response.content.decode()
    return found[1]


def events(kind: EventType) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=kind).order_by("id"))


def auditor_lifts(tmp_path, reference: str):
    """The security auditor opens the refusal (why, the client masked, the person's words) and lifts it."""
    auditor = make_staff("sec-auditor", "auditor", tmp_path)
    staff = Client()
    assert sign_in(staff, auditor).status_code == 302
    listed = staff.get("/backoffice/refusals/?awaiting=1")
    assert reference in listed.content.decode()
    opened = staff.get(f"/backoffice/refusals/{reference}/")
    assert opened.status_code == 200
    shown = opened.content.decode()
    assert "I sent one request for my team." in shown
    assert "198.51.100.0/24" in shown  # the client masked: its network and a keyed digest
    assert ADDRESS not in shown
    lifted = staff.post(
        f"/backoffice/refusals/{reference}/",
        {"decision": ReviewOutcome.LIFTED, "reason": "One request from a shared office network; not abuse."},
    )
    assert lifted.status_code == 302
    [decided] = events(EventType.REFUSAL_LIFTED)
    assert (decided.actor, decided.reason) == (auditor, "One request from a shared office network; not abuse.")
    assert decided.extra["refusal"] == reference
    assert decided.extra["counters_forgotten"] >= 1
    return auditor


@pytest.mark.duty("RGT-12")
@pytest.mark.parametrize(("prefix", "said"), [("", "您的请求未被受理"), ("/en", "Your request was not accepted")])
def test_a_rate_limit_refusal_is_cited_reviewed_lifted_and_the_person_submits_again(settings, tmp_path, prefix, said):
    settings.PIWARDEN_CONSULTATION_RATE = "1/d"
    person = Client(REMOTE_ADDR=ADDRESS)
    assert person.post(f"{prefix}/consultation/", consultation_data(email="a@example.com")).status_code == 302

    refused = person.post(f"{prefix}/consultation/", consultation_data(email="b@example.com"))
    reference = refused_reference(refused)
    page = refused.content.decode()
    assert said in page
    assert f"{prefix}/security/review/?ref={reference}" in page  # how to ask for human review
    assert refused["Retry-After"]
    assert Inquiry.objects.count() == 1  # nothing of the refused request stored
    [refusal] = Refusal.objects.all()
    assert (refusal.reference, refusal.rule, refusal.scope) == (reference, Rule.RATE_LIMIT, "consultation")
    assert refusal.detail == {
        "count": 2,
        "limit": 1,
        "window_seconds": 86_400,
        "client": refusal.detail["client"],
        "browser": "other · other",  # the test client sends no user agent
    }
    assert refusal.detail["client"].startswith("198.51.100.0/24 · ")  # masked when refused
    assert ADDRESS not in str(AuditEvent.objects.values_list("extra", flat=True))

    # The person asks for a review with the reference (the link fills it in).
    form = person.get(f"{prefix}/security/review/", {"ref": reference})
    assert form.status_code == 200
    assert f'value="{reference}"' in form.content.decode()
    asked = person.post(
        f"{prefix}/security/review/", {"reference": reference.lower(), "message": "I sent one request for my team."}
    )
    assert asked.status_code == 302
    status = person.get(asked["Location"])
    assert status.status_code == 200
    assert 'id="review-status"' in status.content.decode()
    refusal.refresh_from_db()
    assert refusal.awaiting_review
    assert refusal.message == "I sent one request for my team."
    [requested] = events(EventType.REFUSAL_REVIEW_REQUESTED)
    assert requested.extra == {"refusal": reference, "rule": "rate_limit"}

    # The security role sees why the rule fired, and lifts it with a reason.
    auditor = auditor_lifts(tmp_path, reference)
    refusal.refresh_from_db()
    assert (refusal.decision, refusal.decided_by) == (ReviewOutcome.LIFTED, auditor)

    # The person reads the decision, and may submit at once.
    status = person.get(f"{prefix}/security/review/", {"ref": reference}).content.decode()
    assert "One request from a shared office network; not abuse." in status
    assert person.post(f"{prefix}/consultation/", consultation_data(email="b@example.com")).status_code == 302
    assert Inquiry.objects.count() == 2


@pytest.mark.duty("RGT-12")
def test_an_upheld_refusal_stays_and_a_second_decision_is_refused(settings, tmp_path):
    settings.PIWARDEN_RIGHTS_RATE = "1/d"
    person = Client(REMOTE_ADDR=ADDRESS)
    person.post("/en/rights/status/", {"reference": "ABCDEFGHJK", "email": "a@example.com"})
    reference = refused_reference(person.post("/en/rights/status/", {"reference": "ABCDEFGHJK", "email": "a@x.com"}))
    auditor = make_staff("sec-auditor", "auditor", tmp_path)
    staff = Client()
    sign_in(staff, auditor)
    upheld = staff.post(
        f"/backoffice/refusals/{reference}/", {"decision": ReviewOutcome.UPHELD, "reason": "Forty posts in a minute."}
    )
    assert upheld.status_code == 302
    again = staff.post(
        f"/backoffice/refusals/{reference}/", {"decision": ReviewOutcome.LIFTED, "reason": "Changed my mind about it."}
    )
    assert again.status_code == 400
    assert Refusal.objects.get(reference=reference).decision == ReviewOutcome.UPHELD
    assert len(events(EventType.REFUSAL_UPHELD)) == 1
    assert not events(EventType.REFUSAL_LIFTED)
    # Still refused: nothing was forgotten.
    assert person.post("/en/rights/status/", {"reference": "ABCDEFGHJK", "email": "a@x.com"}).status_code == 429


@pytest.mark.duty("RGT-12")
@pytest.mark.parametrize(
    ("data", "status", "field"),  # the console speaks Chinese unless the staff member chose English
    [
        ({"decision": "", "reason": "A reason long enough."}, 400, "请选择解除还是维持该拒绝。"),
        ({"decision": "lifted", "reason": "short"}, 400, "请填写理由（10 至 500 个字符）"),
        ({"decision": "lifted", "reason": "x" * 501}, 400, "请填写理由（10 至 500 个字符）"),
        ({"decision": "pardoned", "reason": "A reason long enough."}, 400, "请选择解除还是维持该拒绝。"),
    ],
)
def test_a_decision_without_a_valid_choice_or_reason_changes_nothing(settings, tmp_path, data, status, field):
    settings.PIWARDEN_RIGHTS_RATE = "1/d"
    person = Client(REMOTE_ADDR=ADDRESS)
    person.post("/en/rights/status/", {"reference": "ABCDEFGHJK", "email": "a@example.com"})
    reference = refused_reference(person.post("/en/rights/status/", {"reference": "ABCDEFGHJK", "email": "a@x.com"}))
    staff = Client()
    sign_in(staff, make_staff("sec-auditor", "auditor", tmp_path))
    answer = staff.post(f"/backoffice/refusals/{reference}/", data)
    assert answer.status_code == status
    assert field in answer.content.decode()
    assert Refusal.objects.get(reference=reference).decided_at is None
    assert not events(EventType.REFUSAL_LIFTED)
    assert not events(EventType.REFUSAL_UPHELD)


@pytest.mark.duty("RGT-12")
def test_another_role_may_not_decide_and_its_attempt_is_recorded(settings, tmp_path):
    settings.PIWARDEN_RIGHTS_RATE = "1/d"
    person = Client(REMOTE_ADDR=ADDRESS)
    person.post("/en/rights/status/", {"reference": "ABCDEFGHJK", "email": "a@example.com"})
    reference = refused_reference(person.post("/en/rights/status/", {"reference": "ABCDEFGHJK", "email": "a@x.com"}))
    staff = Client()
    sign_in(staff, make_staff("officer", "privacy_officer", tmp_path))
    answer = staff.post(f"/backoffice/refusals/{reference}/", {"decision": "lifted", "reason": "Lifting it anyway."})
    assert answer.status_code == 404
    assert Refusal.objects.get(reference=reference).decided_at is None
    assert AuditEvent.objects.filter(event_type=EventType.STAFF_ACCESS_REFUSED, extra__about=reference).exists()


# --- bad input on the review form, in both languages --------------------------------------------


def _refusal(settings) -> str:
    settings.PIWARDEN_RIGHTS_RATE = "1/d"
    person = Client(REMOTE_ADDR="198.51.100.99")
    person.post("/en/rights/status/", {"reference": "ABCDEFGHJK", "email": "a@example.com"})
    return refused_reference(person.post("/en/rights/status/", {"reference": "ABCDEFGHJK", "email": "a@x.com"}))


BAD_INPUT = [
    (
        {"reference": "", "message": "hello"},
        "请输入拒绝页面上显示的编号。",
        "Enter the reference shown on the refusal page.",
    ),
    ({"reference": "ABC", "message": "hello"}, "编号为 10 位字符。", "A reference has exactly ten characters."),
    (
        {"reference": "ABCDEFGHJKLM", "message": "hello"},
        "编号为 10 位字符。",
        "A reference has exactly ten characters.",
    ),
    ({"reference": "2222222222", "message": "hello"}, "没有与此编号对应的拒绝记录", "No refusal has this reference."),
    ({"reference": "{ref}", "message": ""}, "请简要说明您当时在做什么", "Tell us briefly what you were doing"),
    ({"reference": "{ref}", "message": "   "}, "请简要说明您当时在做什么", "Tell us briefly what you were doing"),
    ({"reference": "{ref}", "message": "x" * 1001}, "请不要超过 1000 个字符。", "Please keep it to 1000 characters."),
]


@pytest.mark.duty("RGT-12")
@pytest.mark.parametrize(("data", "zh", "en"), BAD_INPUT)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_bad_input_on_the_review_form_is_explained_and_changes_nothing(settings, data, zh, en, language):
    reference = _refusal(settings)
    settings.PIWARDEN_RIGHTS_RATE = "1000/m"
    body = {k: v.format(ref=reference) for k, v in data.items()}
    url = "/en/security/review/" if language == "en" else "/security/review/"
    answer = Client(REMOTE_ADDR="203.0.113.5").post(url, body)
    assert answer.status_code == 400
    assert (en if language == "en" else zh) in answer.content.decode()
    refusal = Refusal.objects.get(reference=reference)
    assert refusal.review_requested_at is None
    assert refusal.message is None
    assert not events(EventType.REFUSAL_REVIEW_REQUESTED)


@pytest.mark.duty("RGT-12")
def test_a_second_review_request_is_refused(settings):
    reference = _refusal(settings)
    settings.PIWARDEN_RIGHTS_RATE = "1000/m"
    client = Client(REMOTE_ADDR="203.0.113.5")
    assert client.post("/en/security/review/", {"reference": reference, "message": "first"}).status_code == 302
    second = client.post("/en/security/review/", {"reference": reference, "message": "second"})
    assert second.status_code == 400
    assert "A review of this refusal was asked for already." in second.content.decode()
    assert Refusal.objects.get(reference=reference).message == "first"
    assert len(events(EventType.REFUSAL_REVIEW_REQUESTED)) == 1
