"""Access-review campaigns (issue 8 §3, policy §五.3): opened, decided over HTTP by a signed-in
privacy officer, enforced at the deadline (time travel), signed with the audit key and verified.

Real HTTP (the Django test client), the real ``createstaff`` personas, the real signing key; the
deadline passes by moving the clock (time-machine), not by editing rows.
"""

from __future__ import annotations

import datetime
import io
import json
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from piwarden.audit import signing
from piwarden.audit.models import AuditEvent, EventType
from piwarden.inquiries.models import Inquiry
from piwarden.staff import reviews
from piwarden.staff.actions import decide_access, open_access_review
from piwarden.staff.models import AccessReview, AccessReviewLine, Decision
from piwarden.staff.permissions import declared_role
from tests.conftest import make_staff, sign_in
from tests.staff.test_training import run_staff_tasks

pytestmark = pytest.mark.django_db

REASON = "Calling back about the quote"


def console(user: User) -> Client:
    client = Client()
    response = sign_in(client, user)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    return client


def line_of(review: AccessReview, user: User) -> AccessReviewLine:
    return AccessReviewLine.objects.get(review=review, staff=user)


def decide(client: Client, review: AccessReview, user: User, decision: str) -> object:
    line = line_of(review, user)
    return client.post(f"/backoffice/reviews/{review.pk}/", {"line": line.pk, "decision": decision})


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("id"))


@dataclass
class Campaign:
    review: AccessReview
    staff: dict[str, User]


@pytest.fixture
def campaign(carol, alice, bob, submit, tmp_path) -> Campaign:
    """Alice reveals a consultation; Carol opens a campaign over HTTP and decides three lines,
    Dave (a second privacy officer) decides Carol's; Dave's and Erin's stay unreviewed."""
    assert submit(name="Zhang Canary", email="zhang.canary@example.com").status_code == HTTPStatus.FOUND
    inquiry = Inquiry.objects.get()
    Inquiry.objects.filter(pk=inquiry.pk).update(assigned_to=alice)  # sales reveal what is theirs
    revealed = console(alice).post(
        f"/backoffice/inquiries/{inquiry.reference}/",
        {"purpose": "respond_inquiry", "field_names": ["name", "email"], "reason": REASON},
    )
    assert "Zhang Canary" in revealed.content.decode()
    dave = make_staff("dave", "privacy_officer", tmp_path)
    erin = make_staff("erin", "sales", tmp_path)
    officer = console(carol)
    opened = officer.post("/backoffice/reviews/")
    assert opened.status_code == HTTPStatus.FOUND
    review = AccessReview.objects.get()
    assert urlsplit(opened["Location"]).path == f"/backoffice/reviews/{review.pk}/"
    staff = {u.username: u for u in (alice, bob, carol, dave, erin)}
    return Campaign(review, staff)


@pytest.mark.duty("SEC-02")
def test_lines_list_roles_grants_and_reveal_counts_and_no_personal_value(campaign, carol, smtp, settings):
    review, staff = campaign.review, campaign.staff
    assert run_staff_tasks() == ["sent"]  # the reviewers are told, once
    assert run_staff_tasks() == []
    [told] = smtp.collector.to(settings.PIWARDEN_PRIVACY_OFFICER_EMAIL)
    assert f"/backoffice/reviews/{review.pk}/" in told.body
    assert "Zhang Canary" not in told.body
    page = console(carol).get(f"/backoffice/reviews/{review.pk}/").content.decode()
    assert "Zhang Canary" not in page
    assert "zhang.canary" not in page
    alice = line_of(review, staff["alice"])
    assert alice.reveals == [{"category": "consultation", "purpose": "respond_inquiry", "reveals": 1, "people": 1}]
    assert (alice.roles, alice.grants) == (["sales"], [])
    assert {line.staff.username for line in review.lines.all()} == set(staff)
    assert [e.actor for e in events(EventType.ACCESS_REVIEW_OPENED)] == [carol]


def decide_and_pass_the_deadline(campaign: Campaign) -> AccessReview:
    review, staff = campaign.review, campaign.staff
    officer = console(staff["carol"])
    assert decide(officer, review, staff["carol"], "confirm").status_code == HTTPStatus.CONFLICT  # not her own
    assert line_of(review, staff["carol"]).decision == Decision.PENDING
    assert decide(officer, review, staff["alice"], "confirm").status_code == HTTPStatus.FOUND
    assert decide(officer, review, staff["bob"], "revoke").status_code == HTTPStatus.FOUND
    assert decide(console(staff["dave"]), review, staff["carol"], "confirm").status_code == HTTPStatus.FOUND
    assert decide(officer, review, staff["alice"], "revoke").status_code == HTTPStatus.CONFLICT  # decided already
    assert list(staff["bob"].groups.all()) == []  # revoked: at once
    # The deadline passes with Dave's and Erin's lines unreviewed: the periodic job suspends them.
    with time_machine.travel(review.deadline - datetime.timedelta(hours=1), tick=False):
        call_command("staff", "periodic", stdout=io.StringIO())
    assert reviews.pending(review) == 2  # not yet
    with time_machine.travel(review.deadline + datetime.timedelta(hours=1), tick=False):
        out = io.StringIO()
        call_command("staff", "periodic", stdout=out)
        assert f"enforced [{review.pk}]" in out.getvalue()
    review.refresh_from_db()
    return review


@pytest.mark.duty("SEC-02")
def test_decided_over_http_and_unreviewed_access_suspended_at_the_deadline(campaign):
    review = decide_and_pass_the_deadline(campaign)
    staff = campaign.staff
    assert review.is_complete
    decisions = {name: line_of(review, user).decision for name, user in staff.items()}
    assert decisions == {
        "alice": Decision.CONFIRMED,
        "bob": Decision.REVOKED,
        "carol": Decision.CONFIRMED,
        "dave": Decision.SUSPENDED,
        "erin": Decision.SUSPENDED,
    }
    roles = {name: sorted(user.groups.values_list("name", flat=True)) for name, user in staff.items()}
    assert roles == {"alice": ["sales"], "bob": [], "carol": ["privacy_officer"], "dave": [], "erin": []}
    assert declared_role(User.objects.get(pk=staff["dave"].pk)) is None
    carol, alice, dave = staff["carol"], staff["alice"], staff["dave"]
    confirmed = [(e.actor, e.extra["staff"]) for e in events(EventType.ACCESS_CONFIRMED)]
    assert confirmed == [(carol, alice.pk), (dave, carol.pk)]
    assert [(e.actor, e.extra["removed"]) for e in events(EventType.ACCESS_REVOKED)] == [(carol, ["auditor"])]
    suspended = sorted(e.extra["staff"] for e in events(EventType.ACCESS_SUSPENDED))
    assert suspended == sorted([dave.pk, staff["erin"].pk])
    assert [e.actor for e in events(EventType.ACCESS_REVIEW_SIGNED)] == [None]


@pytest.mark.duty("SEC-02")
def test_the_signed_review_verifies_and_fails_once_edited(campaign, tmp_path):
    review = decide_and_pass_the_deadline(campaign)
    assert reviews.verify_review(review).ok
    out = io.StringIO()
    call_command("staff", "review", "verify", str(review.pk), stdout=out)
    assert "verifies" in out.getvalue()
    signed = json.loads(review.document)
    assert [(line["username"], line["decision"]) for line in signed["lines"]] == [
        ("alice", "confirmed"),
        ("bob", "revoked"),
        ("carol", "confirmed"),
        ("dave", "suspended"),
        ("erin", "suspended"),
    ]
    officer = console(campaign.staff["carol"])
    assert "签名验证通过" in officer.get(f"/backoffice/reviews/{review.pk}/").content.decode()
    exported = officer.get(f"/backoffice/reviews/{review.pk}/signed.json")
    assert exported.status_code == HTTPStatus.OK
    assert reviews.verify_export(exported.content.decode()).ok
    export_file = tmp_path / "review.json"
    export_file.write_bytes(exported.content)
    call_command("staff", "review", "verify", "--file", str(export_file), stdout=io.StringIO())
    assert [e.actor for e in events(EventType.ACCESS_REVIEW_EXPORTED)] == [campaign.staff["carol"]]

    # An account renamed since is no edit of the review; a decision edited in the rows, or the
    # stored document edited, is.
    User.objects.filter(pk=campaign.staff["alice"].pk).update(username="alice.wang")
    assert reviews.verify_review(review).ok
    bob_line = line_of(review, campaign.staff["bob"])
    AccessReviewLine.objects.filter(pk=bob_line.pk).update(decision=Decision.CONFIRMED)
    assert reviews.verify_review(review).problem == "the stored lines or decisions differ from the signed document"
    with pytest.raises(CommandError, match="NOT verified"):
        call_command("staff", "review", "verify", str(review.pk), stdout=io.StringIO())
    AccessReview.objects.filter(pk=review.pk).update(document=review.document.replace('"revoked"', '"confirmed"'))
    review.refresh_from_db()
    assert reviews.verify_review(review).problem == "the signature does not match the stored document"
    assert "签名验证未通过" in officer.get(f"/backoffice/reviews/{review.pk}/").content.decode()
    forged = json.loads(exported.content)
    forged["document"] = forged["document"].replace('"revoked"', '"confirmed"')
    export_file.write_text(json.dumps(forged))
    with pytest.raises(CommandError, match="NOT verified"):
        call_command("staff", "review", "verify", "--file", str(export_file), stdout=io.StringIO())


def test_revoking_takes_the_console_away_at_once(carol, bob):
    auditor = console(bob)
    assert auditor.get("/backoffice/audit/").status_code == HTTPStatus.OK
    officer = console(carol)
    officer.post("/backoffice/reviews/")
    review = AccessReview.objects.get()
    assert decide(officer, review, bob, "revoke").status_code == HTTPStatus.FOUND
    response = auditor.get("/backoffice/audit/")  # the same session, the next request
    assert response.status_code == HTTPStatus.FOUND
    assert urlsplit(response["Location"]).path == "/backoffice/login/"
    [revoked] = events(EventType.ACCESS_REVOKED)
    assert revoked.extra["removed"] == ["auditor"]


def test_only_reviewers_open_the_review_pages_and_a_line_of_another_campaign_is_not_found(carol, alice, bob):
    officer = console(carol)
    officer.post("/backoffice/reviews/")
    review = AccessReview.objects.get()
    for user in (alice, bob):
        client = console(user)
        for url in ("/backoffice/reviews/", f"/backoffice/reviews/{review.pk}/", "/backoffice/training/"):
            assert client.get(url).status_code == HTTPStatus.NOT_FOUND, (user.username, url)
        assert client.post("/backoffice/reviews/").status_code == HTTPStatus.NOT_FOUND
    assert AccessReview.objects.count() == 1
    refused = AuditEvent.objects.filter(event_type=EventType.STAFF_ACCESS_REFUSED, actor__in=[alice, bob])
    assert refused.count() == 8  # three pages and the opening, for each
    assert officer.post(f"/backoffice/reviews/{review.pk}/", {"line": 999999, "decision": "confirm"}).status_code == (
        HTTPStatus.NOT_FOUND
    )
    assert officer.get(f"/backoffice/reviews/{review.pk + 1}/").status_code == HTTPStatus.NOT_FOUND
    # Not signed yet: nothing to download.
    assert officer.get(f"/backoffice/reviews/{review.pk}/signed.json").status_code == HTTPStatus.NOT_FOUND
    # One campaign at a time.
    assert officer.post("/backoffice/reviews/").status_code == HTTPStatus.CONFLICT


@pytest.mark.duty("SEC-02")
def test_the_periodic_job_opens_a_campaign_every_period_and_counts_reveals_since_the_last(
    carol, alice, settings, submit, tmp_path
):
    settings.PIWARDEN_ACCESS_REVIEW_MONTHS = 3
    assert submit().status_code == HTTPStatus.FOUND
    inquiry = Inquiry.objects.get()
    Inquiry.objects.filter(pk=inquiry.pk).update(assigned_to=alice)  # sales reveal what is theirs
    call_command("staff", "periodic", stdout=io.StringIO())
    assert not AccessReview.objects.exists()  # the first is due a period after the first account
    start = timezone.now() + datetime.timedelta(days=93)
    with time_machine.travel(start, tick=True):
        call_command("staff", "periodic", stdout=io.StringIO())
        first = AccessReview.objects.get()
        assert first.opened_by is None
        assert first.period_end - first.period_start >= datetime.timedelta(days=89)
        # Everyone confirmed: the campaign is signed; nothing more until the period is over.
        decide(console(carol), first, alice, "confirm")
        dave = make_staff("dave", "privacy_officer", tmp_path)
        assert not line_exists(first, dave)  # made after the opening
        decide(console(dave), first, carol, "confirm")
    first.refresh_from_db()
    assert first.is_complete
    assert line_of(first, alice).reveals == []
    with time_machine.travel(start + datetime.timedelta(days=60), tick=True):
        call_command("staff", "periodic", stdout=io.StringIO())
        revealed = console(alice).post(
            f"/backoffice/inquiries/{inquiry.reference}/",
            {"purpose": "respond_inquiry", "field_names": ["name"], "reason": REASON},
        )
        assert revealed.status_code == HTTPStatus.OK
    assert AccessReview.objects.count() == 1
    with time_machine.travel(start + datetime.timedelta(days=93), tick=False):
        call_command("staff", "periodic", stdout=io.StringIO())
        call_command("staff", "periodic", stdout=io.StringIO())  # idempotent
    assert AccessReview.objects.count() == 2
    second = AccessReview.objects.first()
    assert second is not None
    assert second.period_start == first.period_end
    assert second.lines.filter(staff=dave).exists()
    assert line_of(second, alice).reveals == [
        {"category": "consultation", "purpose": "respond_inquiry", "reveals": 1, "people": 1}
    ]


def line_exists(review: AccessReview, user: User) -> bool:
    return AccessReviewLine.objects.filter(review=review, staff=user).exists()


def test_the_command_opens_shows_and_exports(carol, alice, tmp_path):
    out = io.StringIO()
    call_command("staff", "review", "open", stdout=out)
    assert "Opened access review" in out.getvalue()
    with pytest.raises(CommandError, match="已有一项权限审查正在进行"):  # an open one: finish it first
        call_command("staff", "review", "open", stdout=io.StringIO())
    out = io.StringIO()
    call_command("staff", "review", "show", stdout=out)
    assert "alice" in out.getvalue()
    assert "2 to review" in out.getvalue()
    with pytest.raises(CommandError, match="not signed"):
        call_command("staff", "review", "show", "--export", str(tmp_path / "x.json"), stdout=io.StringIO())


def test_without_the_signing_key_a_revocation_still_works_and_the_review_is_signed_later(
    carol, bob, settings, tmp_path
):
    dave = make_staff("dave", "privacy_officer", tmp_path)
    review = open_access_review(by=carol)
    keys = settings.PIWARDEN_KEYS
    settings.PIWARDEN_KEYS = f"file:{tmp_path / 'no-keys'}"  # a directory without the signing key
    signing.forget()
    decide_access(line_of(review, bob).pk, reviewer=carol, confirm=False)
    decide_access(line_of(review, dave).pk, reviewer=carol, confirm=True)
    decide_access(line_of(review, carol).pk, reviewer=dave, confirm=True)
    review.refresh_from_db()
    assert review.is_complete
    assert review.signature == ""
    assert list(bob.groups.all()) == []  # revoked all the same
    assert "not signed yet" in reviews.verify_review(review).problem
    call_command("staff", "periodic", stdout=io.StringIO())  # still no key: still unsigned
    review.refresh_from_db()
    assert review.signature == ""
    settings.PIWARDEN_KEYS = keys
    signing.forget()
    call_command("staff", "periodic", stdout=io.StringIO())
    review.refresh_from_db()
    assert reviews.verify_review(review).ok
    assert [e.actor for e in events(EventType.ACCESS_REVIEW_SIGNED)] == [None]
