"""`piwarden retention sweep` applies every declared category's retention, and nothing younger.

One record of every category the sweep removes is made just past its deadline and one just inside
it, at the times the site would have made them (time_machine); one sweep removes exactly the
first of each, erases the people nothing keeps any more, and writes one ``retention.batch`` event
per batch and one ``person.shredded`` per person; a second sweep finds nothing.
"""

from __future__ import annotations

import datetime
import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.tasks import TaskResultStatus
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from piwarden.accounts.models import SESSION_IDLE, Account, AccountSession, LoginRecord
from piwarden.audit.models import AuditEvent
from piwarden.children.models import GuardianRequest, GuardianRequestStatus
from piwarden.consent.models import ConsentRecord
from piwarden.downloads.models import DownloadRecord, PageView, Resource
from piwarden.incidents.models import Incident
from piwarden.incidents.models import Notice as IncidentNotice
from piwarden.inquiries.models import Inquiry
from piwarden.monitoring.models import Alert, Rule
from piwarden.people import ledger
from piwarden.people.actions import find_or_create_person
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.policy.models import PolicyVersion
from piwarden.retention.actions import expired, lift_hold, place_hold, sweep_batch
from piwarden.retention.models import LegalHold, SweepClock
from piwarden.retention.rules import NETWORK_LOG_DAYS, SWEPT, problems
from piwarden.retention.sweep import run_retention
from piwarden.revisions.models import ChangeNotice
from piwarden.rights.models import RequestKind, RequestStatus, RequestStep, RightsRequest
from piwarden.security.models import Refusal, SecurityEvent
from piwarden.staff.actions import suspend_staff
from piwarden.staff.models import AccessGrant, AccessReview, TrainingNotice, TrainingRecord
from piwarden.vault.models import DataKey
from tests.accounts.helpers import open_account, signed_in
from tests.conftest import consultation_data, make_staff
from tests.incidents.making import acting, an_incident
from tests.security.test_actions import submitted as submitted_and_refused

HOUR = datetime.timedelta(hours=1)
NOW = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)


def days(category: str) -> datetime.timedelta:
    return datetime.timedelta(days=load_declaration().category(category).retention_days)


def sweep(*args: str) -> str:
    out = io.StringIO()
    call_command("retention", "sweep", *args, stdout=out, stderr=out)
    return out.getvalue()


def submitted(client: Any, email: str, when: datetime.datetime) -> Inquiry:
    """A consultation request sent through the form at ``when``."""
    before = set(Inquiry.objects.values_list("pk", flat=True))
    with time_machine.travel(when, tick=False):
        response = client.post("/consultation/", consultation_data(email=email))
        assert response.status_code == 302, response.content.decode()[:300]
    [made] = Inquiry.objects.exclude(pk__in=before)
    return made


def someone(email: str) -> Person:
    with transaction.atomic():
        return find_or_create_person(email=email)


def consent(person: Person, withdrawn: datetime.datetime) -> str:
    record = ConsentRecord.objects.create(
        person=person,
        purpose="respond_inquiry",
        policy_version="1.0",
        policy_id="0" * 64,
        purpose_hash="0" * 64,
        channel="consultation_form",
        language="zh-hans",
        shown_text="I agree",
        given_at=withdrawn - datetime.timedelta(days=30),
        withdrawn_at=withdrawn,
    )
    return str(record.pk)


def rights_request(person: Person, closed: datetime.datetime) -> str:
    request = RightsRequest(
        person=person,
        data_key_id=person.data_key_id,
        kind=RequestKind.ACCESS,
        status=RequestStatus.COMPLETED,
        language="zh-hans",
        email="someone@example.com",
        details="",
        submitted_at=closed - datetime.timedelta(days=10),
        decided_at=closed,
        completed_at=closed,
    )
    request.save()
    RequestStep(
        person=person, data_key_id=person.data_key_id, request=request, at=closed, status="completed", note=""
    ).save()
    return request.reference


def alert(raised: datetime.datetime) -> int:
    return Alert.objects.create(
        rule=Rule.BULK_REVEALS,
        events=31,
        threshold=30,
        window_minutes=10,
        first_seq=1,
        last_seq=int(raised.timestamp()),
        first_at=raised,
        last_at=raised,
        raised_at=raised,
    ).pk


def grant(user: User, ended: datetime.datetime) -> int:
    return AccessGrant.objects.create(
        requester=user,
        category="consultation",
        purpose="respond_inquiry",
        reason="Answering a request",
        hours=4,
        status=AccessGrant.Status.EXPIRED,
        requested_at=ended - 4 * HOUR,
        decided_at=ended - 4 * HOUR,
        expires_at=ended,
    ).pk


def review(completed: datetime.datetime) -> int:
    return AccessReview.objects.create(
        opened_at=completed - datetime.timedelta(days=10),
        period_start=completed - datetime.timedelta(days=100),
        period_end=completed - datetime.timedelta(days=10),
        deadline=completed,
        completed_at=completed,
    ).pk


def staff_session(expired: datetime.datetime) -> str:
    key = uuid.uuid4().hex
    Session.objects.create(session_key=key, session_data="e30:signed", expire_date=expired)
    return key


def task_result(finished: datetime.datetime) -> str:
    return str(
        DBTaskResult.objects.create(
            status=TaskResultStatus.SUCCESSFUL,
            args_kwargs={"args": [], "kwargs": {}},
            task_path="piwarden.inquiries.tasks.send_acknowledgement",
            backend_name="default",
            queue_name="default",
            run_after=finished,
            finished_at=finished,
            exception_class_path="",
            traceback="",
        ).pk
    )


def sign_in_attempt(
    model: type[AccessLog] | type[AccessFailureLog] | type[AccessAttempt], at: datetime.datetime
) -> int:
    """A row of one of django-axes' tables, as a sign-in at ``at`` leaves it (attempt_time is auto_now_add)."""
    seen = {"ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0", "username": uuid.uuid4().hex}
    extra = {"get_data": "", "post_data": "", "failures_since_start": 1} if model is AccessAttempt else {}
    with time_machine.travel(at, tick=False):
        return int(model.objects.create(**seen, path_info="/backoffice/", http_accept="text/html", **extra).pk)


def resource(by: User) -> Resource:
    return Resource.objects.create(
        title_zh="白皮书",
        title_en="White paper",
        filename="paper.pdf",
        kind="pdf",
        size=1,
        sha256="0" * 64,
        stored_name=uuid.uuid4().hex,
        published_at=NOW - datetime.timedelta(days=800),
        updated_at=NOW - datetime.timedelta(days=800),
        published_by=by,
    )


def accepted_and_refused(settings: Any, at: datetime.datetime, address: str) -> tuple[Any, Any]:
    """A consultation request sent at ``at`` and a second one the rate limit refused: the first one's
    security event and the refusal (which names the second one's event)."""
    events, refusals = (
        set(SecurityEvent.objects.values_list("pk", flat=True)),
        set(Refusal.objects.values_list("pk", flat=True)),
    )
    submitted_and_refused(settings, at, address)  # the security tests' own pair
    [refusal] = Refusal.objects.exclude(pk__in=refusals)
    [accepted] = SecurityEvent.objects.exclude(pk__in=events).exclude(pk=refusal.event_id)
    return accepted.pk, refusal.pk


Made = dict[str, tuple[Callable[[], bool], Callable[[], bool]]]


def formerly_housekept(made: Made, carol: User, settings: Any) -> Account:
    """One record just past and one just inside its retention, in every table whose rows the
    housekeeping's own jobs deleted before the sweep's rules took them over (keyed by table)."""
    s_old = staff_session(NOW - days("staff_sessions") - HOUR)
    s_young = staff_session(NOW - days("staff_sessions") + HOUR)
    made["sessions.Session"] = (
        lambda: Session.objects.filter(pk=s_old).exists(),
        lambda: Session.objects.filter(pk=s_young).exists(),
    )
    for model in (AccessLog, AccessFailureLog, AccessAttempt):
        # A network log (RET-04): at least six months whatever the declaration says.
        assert days("sign_in_records").days >= NETWORK_LOG_DAYS
        a_old = sign_in_attempt(model, NOW - days("sign_in_records") - HOUR)
        a_young = sign_in_attempt(model, NOW - days("sign_in_records") + HOUR)
        made[model._meta.label] = (
            lambda model=model, pk=a_old: model.objects.filter(pk=pk).exists(),
            lambda model=model, pk=a_young: model.objects.filter(pk=pk).exists(),
        )
    t_old, t_young = task_result(NOW - days("queued_tasks") - HOUR), task_result(NOW - days("queued_tasks") + HOUR)
    made["django_tasks_database.DBTaskResult"] = (
        lambda: DBTaskResult.objects.filter(pk=t_old).exists(),
        lambda: DBTaskResult.objects.filter(pk=t_young).exists(),
    )
    # A visitor account, opened and signed in to twice through the site: two login records, two
    # sessions, then placed in time (a session ends at its expiry or its idle time, the earlier).
    holder = open_account(Client())
    signed_in(Client())
    signed_in(Client())
    l_old, l_young = LoginRecord.objects.filter(person_id=holder.person_id).order_by("occurred_at")[:2]
    LoginRecord.objects.filter(pk=l_old.pk).update(occurred_at=NOW - days("account_login_log") - HOUR)
    LoginRecord.objects.filter(pk=l_young.pk).update(occurred_at=NOW - days("account_login_log") + HOUR)
    made["accounts.LoginRecord"] = (
        lambda: LoginRecord.objects.filter(pk=l_old.pk).exists(),
        lambda: LoginRecord.objects.filter(pk=l_young.pk).exists(),
    )
    v_idle, v_live = AccountSession.objects.filter(account=holder).order_by("created_at")[:2]
    for session, end in (
        (v_idle, NOW - days("visitor_sessions") - HOUR),
        (v_live, NOW - days("visitor_sessions") + HOUR),
    ):
        AccountSession.objects.filter(pk=session.pk).update(
            created_at=end - 2 * HOUR, last_seen_at=end - SESSION_IDLE, expires_at=end + 10 * HOUR
        )
    made["accounts.AccountSession"] = (
        lambda: AccountSession.objects.filter(pk=v_idle.pk).exists(),
        lambda: AccountSession.objects.filter(pk=v_live.pk).exists(),
    )
    paper = resource(carol)
    d_old, d_young = (
        DownloadRecord.objects.create(person_id=holder.person_id, resource=paper, downloaded_at=at).pk
        for at in (NOW - days("download_history") - HOUR, NOW - days("download_history") + HOUR)
    )
    made["downloads.DownloadRecord"] = (
        lambda: DownloadRecord.objects.filter(pk=d_old).exists(),
        lambda: DownloadRecord.objects.filter(pk=d_young).exists(),
    )
    p_old, p_young = (
        PageView.objects.create(person_id=holder.person_id, path="/en/privacy/", viewed_at=at).pk
        for at in (NOW - days("browsing_history") - HOUR, NOW - days("browsing_history") + HOUR)
    )
    made["downloads.PageView"] = (
        lambda: PageView.objects.filter(pk=p_old).exists(),
        lambda: PageView.objects.filter(pk=p_young).exists(),
    )
    e_old, r_old = accepted_and_refused(settings, NOW - days("security_events") - HOUR, "198.51.100.71")
    e_young, r_young = accepted_and_refused(settings, NOW - days("security_events") + HOUR, "198.51.100.72")
    made["security.SecurityEvent"] = (
        lambda: SecurityEvent.objects.filter(pk=e_old).exists(),
        lambda: SecurityEvent.objects.filter(pk=e_young).exists(),
    )
    made["security.Refusal"] = (
        lambda: Refusal.objects.filter(pk=r_old).exists(),
        lambda: Refusal.objects.filter(pk=r_young).exists(),
    )
    return holder


def deactivated_staff(made: Made, tmp_path: Path) -> None:
    """A staff account suspended just past its retention and one just inside it, each with a training
    record and a training notice: the old account's personal data goes (a tombstone keeps its id)."""
    admin = make_staff("dora", "admin", tmp_path)
    accounts = []
    for name, at in (("olga", NOW - days("staff_accounts") - HOUR), ("yuki", NOW - days("staff_accounts") + HOUR)):
        user = make_staff(name, "sales", tmp_path)
        TrainingNotice.objects.create(staff=user, kind="due_soon", expires_on=at.date(), created_at=at - HOUR)
        with time_machine.travel(at, tick=False):  # the staff page's write path (over HTTP: test_staff_accounts)
            suspend_staff(acting(admin), user.pk)
        accounts.append(user.pk)
    old, young = accounts
    for model in (TrainingRecord, TrainingNotice):
        made[model._meta.label] = (
            lambda model=model: model.objects.filter(staff_id=old).exists(),
            lambda model=model: model.objects.filter(staff_id=young).exists(),
        )
    made["auth.User"] = (
        lambda: User.objects.filter(pk=old, username="olga").exists(),
        lambda: User.objects.filter(pk=young, username="yuki").exists(),
    )


def kept_no_longer(made: Made, carol: User, person: Person, tmp_path: Path) -> None:
    """One record just past and one just inside its retention, for each category that was kept for
    ever before it had a rule: policy change notices, incident notices, guardian requests not consented,
    staff accounts and their training records."""
    deactivated_staff(made, tmp_path)
    policy_notices = []
    for number, at in enumerate((NOW - days("policy_notices") - HOUR, NOW - days("policy_notices") + HOUR), 98):
        version = PolicyVersion.objects.create(
            number=number,
            label=f"{number}.0",
            effective=at.date(),
            digest=str(number) * 32,
            declaration="",
            texts={},
            published_at=at - HOUR,
        )
        policy_notices.append(
            ChangeNotice.objects.create(version=version, person=person, created_at=at - HOUR, sent_at=at).pk
        )
    n_old, n_young = policy_notices
    made["policy_notices"] = (
        lambda: ChangeNotice.objects.filter(pk=n_old).exists(),
        lambda: ChangeNotice.objects.filter(pk=n_young).exists(),
    )
    incident_notices = []
    for closed in (NOW - days("incident_notices") - HOUR, NOW - days("incident_notices") + HOUR):
        incident = an_incident(carol, title=f"Closed {closed:%Y-%m-%d %H:%M}")
        Incident.objects.filter(pk=incident.pk).update(closed_at=closed)
        notice = IncidentNotice.objects.create(incident=incident, person=person, queued_at=closed - 10 * HOUR)
        incident_notices.append(notice.pk)
    open_notice = IncidentNotice.objects.create(
        incident=an_incident(carol), person=person, queued_at=NOW - 2 * days("incident_notices")
    )
    made["incident_notices"] = (
        lambda: IncidentNotice.objects.filter(pk=incident_notices[0]).exists(),
        lambda: IncidentNotice.objects.filter(pk__in=[incident_notices[1], open_notice.pk]).count() == 2,
    )
    guardian: dict[str, uuid.UUID] = {}
    for name, status, decided in (
        ("old", GuardianRequestStatus.SUPERSEDED, NOW - days("guardian_contacts") - HOUR),
        ("young", GuardianRequestStatus.DECLINED, NOW - days("guardian_contacts") + HOUR),
        ("consented", GuardianRequestStatus.CONSENTED, NOW - 2 * days("guardian_contacts")),
    ):
        request = GuardianRequest(
            person=person,
            data_key_id=person.data_key_id,
            guardian_email=f"{name}.guardian@example.com",
            language="zh-hans",
            purposes=["respond_inquiry"],
            status=status,
            created_at=decided - HOUR,
            expires_at=decided + HOUR,
            decided_at=decided,
        )
        request.save(force_insert=True)
        guardian[name] = request.pk
    never_answered = GuardianRequest(
        person=person,
        data_key_id=person.data_key_id,
        guardian_email="silent.guardian@example.com",
        language="en",
        purposes=["respond_inquiry"],
        created_at=NOW - days("guardian_contacts") - 10 * HOUR,
        expires_at=NOW - days("guardian_contacts") - HOUR,  # the link expired: its clock
    )
    never_answered.save(force_insert=True)
    made["guardian_contacts"] = (
        lambda: GuardianRequest.objects.filter(pk__in=[guardian["old"], never_answered.pk]).exists(),
        # a consent given stays with the child's information it allows
        lambda: GuardianRequest.objects.filter(pk__in=[guardian["young"], guardian["consented"]]).count() == 2,
    )


def erased_row(erased: datetime.datetime) -> uuid.UUID:
    """The Person row of someone erased at ``erased`` that nothing links to any more (their audit
    events cut from the log: tests/audit/test_cut.py goes through the cut itself)."""
    key = DataKey.objects.create(wrapped=b"", kek_key_id=0, destroyed_at=erased)
    return Person.objects.create(data_key=key, erased_at=erased).pk


def ended_holds_and_erased_rows(made: Made) -> None:
    h_old, h_young = hold(NOW - days("legal_holds") - HOUR), hold(NOW - days("legal_holds") + HOUR)
    made["legal_holds"] = (
        lambda: LegalHold.objects.filter(pk=h_old).exists(),
        lambda: LegalHold.objects.filter(pk=h_young).exists(),
    )
    p_old = erased_row(NOW - days("person_lifecycle") - HOUR)
    p_young = erased_row(NOW - days("person_lifecycle") + HOUR)
    made["person_lifecycle"] = (
        lambda: Person.objects.filter(pk=p_old).exists(),
        lambda: Person.objects.filter(pk=p_young).exists(),
    )


def hold(ended: datetime.datetime) -> int:
    return LegalHold.objects.create(
        category="consultation",
        reason="Case 2023-17 closed",
        ends_on=ended.date() + datetime.timedelta(days=30),
        placed_at=ended - datetime.timedelta(days=60),
        lifted_at=ended,
        lift_reason="Case closed by the court",
    ).pk


@pytest.mark.django_db(transaction=True)  # the visitor account's mail goes through the task worker
@pytest.mark.duty("RET-01")
@pytest.mark.duty("RET-02")
def test_one_sweep_removes_exactly_each_category_past_its_declared_retention(client, carol, settings, tmp_path):
    settings.CAPTCHA_TEST_MODE = True  # the visitor account's sign-up
    made: Made = {}

    old = submitted(client, "old@example.com", NOW - days("consultation") - HOUR)
    young = submitted(client, "young@example.com", NOW - days("consultation") + HOUR)
    made["consultation"] = (
        lambda: Inquiry.objects.filter(pk=old.pk).exists(),
        lambda: Inquiry.objects.filter(pk=young.pk).exists(),
    )

    keeper = someone("keeper@example.com")  # held by a consultation request made now
    submitted(client, "keeper@example.com", NOW - HOUR)
    c_old, c_young = (
        consent(keeper, NOW - days("consent_records") - HOUR),
        consent(keeper, NOW - days("consent_records") + HOUR),
    )
    made["consent_records"] = (
        lambda: ConsentRecord.objects.filter(pk=c_old).exists(),
        lambda: ConsentRecord.objects.filter(pk=c_young).exists(),
    )
    r_old = rights_request(keeper, NOW - days("rights_request_records") - HOUR)
    r_young = rights_request(keeper, NOW - days("rights_request_records") + HOUR)
    made["rights_request_records"] = (
        lambda: RightsRequest.objects.filter(reference=r_old).exists(),
        lambda: RightsRequest.objects.filter(reference=r_young).exists(),
    )
    a_old, a_young = (
        alert(NOW - days("staff_security_alerts") - HOUR),
        alert(NOW - days("staff_security_alerts") + HOUR),
    )
    made["staff_security_alerts"] = (
        lambda: Alert.objects.filter(pk=a_old).exists(),
        lambda: Alert.objects.filter(pk=a_young).exists(),
    )
    g_old, g_young = (
        grant(carol, NOW - days("staff_access_grants") - HOUR),
        grant(carol, NOW - days("staff_access_grants") + HOUR),
    )
    made["staff_access_grants"] = (
        lambda: AccessGrant.objects.filter(pk=g_old).exists(),
        lambda: AccessGrant.objects.filter(pk=g_young).exists(),
    )
    v_old = review(NOW - days("staff_access_reviews") - HOUR)
    v_young = review(NOW - days("staff_access_reviews") + HOUR)
    made["staff_access_reviews"] = (
        lambda: AccessReview.objects.filter(pk=v_old).exists(),
        lambda: AccessReview.objects.filter(pk=v_young).exists(),
    )
    ended_holds_and_erased_rows(made)
    holder = formerly_housekept(made, carol, settings)
    kept_no_longer(made, carol, keeper, tmp_path)
    # Every rule of the sweep is exercised here: a new one must be added to this test.
    categories = {
        "consultation",
        "consent_records",
        "rights_request_records",
        "staff_security_alerts",
        "staff_access_grants",
        "staff_access_reviews",
        "legal_holds",
        "person_lifecycle",
        "policy_notices",
        "incident_notices",
        "guardian_contacts",
    }
    assert set(made) - categories == {rule.name for rule in SWEPT if rule.category not in categories}
    assert categories == {rule.category for rule in SWEPT if rule.name not in made}

    with time_machine.travel(NOW, tick=False):
        output = sweep()

    for category, (past, inside) in made.items():
        assert not past(), f"{category}: the record past its retention is still there"
        assert inside(), f"{category}: the record inside its retention was removed"
    assert "consultation (inquiries.Inquiry): 1 deleted, 1 person(s) erased" in output

    # The person whose only request went is erased (key destroyed, look-up cleared, consents withdrawn).
    gone = Person.objects.get(pk=old.person_id)
    assert gone.is_erased
    assert gone.email_index is None
    assert gone.data_key.is_destroyed
    assert not ConsentRecord.objects.filter(person=gone, withdrawn_at__isnull=True).exists()
    assert not Person.objects.get(pk=young.person_id).is_erased
    assert not Person.objects.get(pk=keeper.pk).is_erased  # a request of theirs is still kept

    batches = AuditEvent.objects.filter(event_type="retention.batch")
    assert {e.extra["model"] if e.extra["model"] in made else e.extra["category"] for e in batches} == set(made)
    # One batch per rule, each table's or each category's; the security events of the consultation
    # requests above went too, past their 184 days, in batches of people (each may erase one).
    rows = {"children.GuardianRequest": 2}  # one replaced, one never answered
    assert all(
        e.extra["rows"] == rows.get(e.extra["model"], 1)
        for e in batches
        if e.extra["model"] != "security.SecurityEvent"
    )
    assert len(batches) - len(made) == sum(e.extra["model"] == "security.SecurityEvent" for e in batches) - 1
    assert not Person.objects.get(pk=holder.person_id).is_erased  # the account keeps its holder
    [shredded] = AuditEvent.objects.filter(event_type="person.shredded")
    assert shredded.person_id == gone.pk

    with time_machine.travel(NOW + HOUR / 2, tick=False):  # the young ones still inside by half an hour
        again = sweep()
    assert AuditEvent.objects.filter(event_type="retention.batch").count() == len(batches)
    assert "1 deleted" not in again


@pytest.mark.django_db
@pytest.mark.duty("RET-02")
def test_legal_holds_keep_what_they_cover_until_lifted(client, carol):
    held = submitted(client, "held@example.com", NOW - days("consultation") - HOUR)
    free = submitted(client, "free@example.com", NOW - days("consultation") - HOUR)
    with time_machine.travel(NOW - HOUR, tick=False):
        person_hold = place_hold(
            person=held.person,
            reason="Court order 2026-88 (preserve)",
            ends_on=NOW.date() + datetime.timedelta(days=90),
            by=carol,
        )
    with time_machine.travel(NOW, tick=False):
        output = sweep()
    assert Inquiry.objects.filter(pk=held.pk).exists()
    assert not Inquiry.objects.filter(pk=free.pk).exists()
    assert "1 past their retention kept by holds on 1 person(s)" in output
    assert not Person.objects.get(pk=held.person_id).is_erased

    with time_machine.travel(NOW + HOUR, tick=False):
        lift_hold(person_hold.pk, reason="The court lifted its order", by=carol)
        sweep()
    assert not Inquiry.objects.filter(pk=held.pk).exists()
    placed, lifted = (AuditEvent.objects.get(event_type=t) for t in ("retention.hold_placed", "retention.hold_lifted"))
    assert placed.actor_id == lifted.actor_id == carol.pk
    assert lifted.reason == "The court lifted its order"


@pytest.mark.django_db
@pytest.mark.duty("RET-02")
def test_a_hold_on_a_category_keeps_all_of_it_and_the_sweep_says_so(client, carol):
    old = submitted(client, "old@example.com", NOW - days("consultation") - HOUR)
    with time_machine.travel(NOW - HOUR, tick=False):
        category_hold = place_hold(
            category="consultation", reason="Regulator inquiry 2026-4", ends_on=NOW.date(), by=carol
        )
    with time_machine.travel(NOW, tick=False):
        output = sweep()
    assert Inquiry.objects.filter(pk=old.pk).exists()
    assert f"1 past their retention kept by hold(s) {category_hold.pk} on the category" in output
    # The hold ends on its last day: the next day's sweep removes what it kept.
    with time_machine.travel(NOW + datetime.timedelta(days=1), tick=False):
        sweep()
    assert not Inquiry.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db
@pytest.mark.duty("RET-02")
def test_a_clock_far_ahead_deletes_nothing_alerts_and_exits_non_zero(client, settings):
    old = submitted(client, "old@example.com", NOW - days("consultation") + datetime.timedelta(days=1))
    submitted(client, "new@example.com", NOW - HOUR)  # the newest stored time, before the first sweep
    with time_machine.travel(NOW, tick=False):
        sweep()  # trusted now
    assert SweepClock.objects.get().trusted_at == NOW
    jump = NOW + datetime.timedelta(hours=settings.PIWARDEN_RETENTION_CLOCK_SKEW + 1)
    with time_machine.travel(jump, tick=False), pytest.raises(CommandError, match="PIWARDEN_RETENTION_CLOCK_SKEW"):
        sweep()
    assert Inquiry.objects.filter(pk=old.pk).exists()  # past its retention at the wrong clock: kept
    [raised] = Alert.objects.filter(rule=Rule.CLOCK_AHEAD)
    assert raised.first_at == NOW
    assert raised.last_at == jump
    assert raised.threshold == settings.PIWARDEN_RETENTION_CLOCK_SKEW  # the bound, in hours
    [told] = AuditEvent.objects.filter(event_type="monitoring.alert_raised", extra__alert=raised.pk)
    assert (told.extra["trusted"], told.extra["clock"]) == (NOW.isoformat(), jump.isoformat())
    assert told.extra["first_seq"] == raised.first_seq
    # Refused again with nothing new in the log: no second alert.
    with time_machine.travel(jump, tick=False), pytest.raises(CommandError):
        sweep()
    assert Alert.objects.filter(rule=Rule.CLOCK_AHEAD).count() == 1
    # The operator confirms the clock (the site was stopped): audited, and the sweep runs.
    with time_machine.travel(jump, tick=False):
        sweep("--clock-confirmed")
    assert not Inquiry.objects.filter(pk=old.pk).exists()
    assert AuditEvent.objects.filter(event_type="retention.clock_confirmed").count() == 1


@pytest.mark.django_db
def test_the_housekeeping_also_refuses_on_a_jumped_clock(client, settings):
    submitted(client, "new@example.com", NOW - HOUR)
    with time_machine.travel(NOW, tick=False):
        run_retention()
    out, err = io.StringIO(), io.StringIO()
    with time_machine.travel(NOW + datetime.timedelta(days=400), tick=False), pytest.raises(CommandError):
        call_command("housekeeping", "--once", stdout=out, stderr=err)
    assert "PIWARDEN_RETENTION_CLOCK_SKEW" in err.getvalue()


@pytest.mark.django_db
def test_the_plan_counts_per_day_and_names_the_holds(client, carol):
    due_soon = NOW - days("consultation") + datetime.timedelta(days=3, hours=2)
    submitted(client, "a@example.com", due_soon)
    submitted(client, "b@example.com", due_soon)
    overdue = submitted(client, "c@example.com", NOW - days("consultation") - HOUR)
    with time_machine.travel(NOW, tick=False):
        place_hold(person=overdue.person, reason="Court order 2026-88 (preserve)", ends_on=NOW.date(), by=carol)
        out = io.StringIO()
        call_command("retention", "plan", "--days", "10", stdout=out)
    text = out.getvalue()
    assert "consultation (730 days from submission; delete): due now 0 (1 held back); after the next 10 days 0" in text
    assert f"  {(NOW + datetime.timedelta(days=3)).date().isoformat()}: 2" in text
    assert "held back: hold" in text
    assert "1 record(s) past their retention kept" in text
    assert "access_records (1095 days" in text
    assert "the audit log is cut at a signed checkpoint by the sweep" in text
    # Every declared category is in the plan; one kept in several tables once for each, named.
    for category in load_declaration().categories:
        assert f"\n{category.id} (" in f"\n{text}" or f"\n{category.id} [" in f"\n{text}", category.id
    for table in ("axes.AccessLog", "axes.AccessFailureLog", "axes.AccessAttempt"):
        assert f"\nsign_in_records [{table}] (184 days from the attempt; delete): due now 0" in text


@pytest.mark.duty("RET-04")
def test_a_network_log_cannot_be_declared_shorter_than_six_months():
    declaration = load_declaration()
    sign_in = declaration.category("sign_in_records")
    assert sign_in.network_log
    assert sign_in.retention_days >= NETWORK_LOG_DAYS
    assert problems(declaration) == []
    shorter = declaration.model_copy(
        update={
            "categories": [
                c if c.id != "sign_in_records" else c.model_copy(update={"retention_days": 90})
                for c in declaration.categories
            ]
        }
    )
    assert any("network log" in p and "sign_in_records" in p for p in problems(shorter))


@pytest.mark.django_db
@pytest.mark.duty("RET-02")
@pytest.mark.duty("SEC-10")
def test_a_category_declared_anonymise_keeps_its_statistics_and_loses_its_identity(client, declared):
    from tests.policy.test_declaration import REAL_POLICY  # noqa: PLC0415  # a test module

    text = (REAL_POLICY / "declaration.toml").read_text(encoding="utf-8")
    declared(text.replace('after_retention = "delete"', 'after_retention = "anonymise"', 1))  # consultation's
    assert load_declaration().category("consultation").after_retention == "anonymise"
    old = submitted(client, "old@example.com", NOW - days("consultation") - HOUR)
    young = submitted(client, "young@example.com", NOW - days("consultation") + HOUR)
    submitted(client, "new@example.com", NOW - HOUR)  # the newest stored time, before the first sweep

    with time_machine.travel(NOW, tick=False):
        output = sweep()
    assert "consultation (inquiries.Inquiry): 1 anonymised, 1 person(s) erased" in output

    kept = Inquiry.objects.filter(pk=old.pk).values(
        "product", "status", "language", "submitted_at", "name", "email", "phone", "company", "region"
    )[0]
    assert kept["product"] == old.product
    assert kept["language"] == old.language
    assert kept["submitted_at"] == old.submitted_at.replace(hour=0, minute=0, second=0, microsecond=0)
    for field in ("name", "email", "phone", "company", "region"):
        assert bytes(kept[field]) == b"", field  # the values themselves are gone
    person = Person.objects.get(pk=old.person_id)
    assert person.is_erased
    assert person.data_key.is_destroyed
    assert Inquiry.objects.get(pk=young.pk).name == "张伟"

    with time_machine.travel(NOW + HOUR / 2, tick=False):
        again = sweep()
    assert "consultation (inquiries.Inquiry): 0 anonymised" in again
    assert AuditEvent.objects.filter(event_type="retention.batch", extra__category="consultation").count() == 1


@pytest.mark.django_db
@pytest.mark.duty("RET-02")
def test_a_batch_erases_its_people_in_as_many_statements_whatever_their_number(client, settings, tmp_path):
    """A batch of the sweep that erases people runs each eraser, the shredding, the audit events and
    the ledger once for all of them: two people and eight cost the same statements, and each is
    still erased as one erasure on request would be (one ``person.shredded`` event with the counts,
    key destroyed, indexes cleared, ledger entry)."""
    settings.PIWARDEN_ERASURE_LEDGER = tmp_path / "erasures.ledger"  # this test's erasures alone
    [rule] = [i for i, r in enumerate(SWEPT) if r.model is Inquiry]

    def swept(emails: list[str]) -> int:
        when = NOW - days("consultation") - HOUR
        made = [submitted(client, email, when) for email in emails]
        keys = list(expired(SWEPT[rule], NOW).values_list("pk", flat=True))
        assert sorted(keys) == sorted(m.pk for m in made)
        with CaptureQueriesContext(connection) as queries:
            batch = sweep_batch(rule, keys, now=NOW, run="test")
        assert (batch.rows, batch.erased) == (len(emails), len(emails))
        return len(queries)

    two = swept([f"two{n}@example.com" for n in range(2)])
    eight = swept([f"eight{n}@example.com" for n in range(8)])
    assert eight == two

    erased = Person.objects.filter(erased_at__isnull=False)
    assert erased.count() == 10
    assert not erased.filter(email_index__isnull=False).exists()
    assert not erased.filter(data_key__destroyed_at__isnull=True).exists()
    shredded = AuditEvent.objects.filter(event_type="person.shredded")
    assert sorted(shredded.values_list("person_id", flat=True)) == sorted(erased.values_list("pk", flat=True))
    assert {e.extra["erased"]["consultation"] for e in shredded} == {0}  # the sweep deleted it before
    assert {e.extra["erased"]["consent_records"] for e in shredded} == {1}  # the request's consent withdrawn
    comparison = ledger.compare()
    assert (comparison.entries, comparison.unerased, comparison.unrecorded) == (10, [], [])
