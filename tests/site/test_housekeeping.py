"""`piwarden housekeeping` deletes what the declaration keeps no longer, and nothing younger.

Each kind of data the privacy page says is deleted when its retention ends, and that a library or
the outbox holds, is made twice: just past its declared retention and just inside it.  One run
deletes exactly the first of each, records one `retention.swept` event, and a second run finds
nothing.
"""

from __future__ import annotations

import datetime
import io
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from captcha.models import CaptchaStore
from django.contrib.sessions.models import Session
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.consent.cookies import RETENTION_DAYS as COOKIE_CHOICE_RETENTION_DAYS
from piwarden.consent.models import CookieConsent
from piwarden.policy.declaration import load_declaration
from piwarden.retention.rules import SWEPT, Kept, rules_of
from piwarden.site.housekeeping import EXPIRIES, JOBS
from piwarden.vault.outbox import SUFFIX, SealedFileBackend
from tests.serving import free_port, operator_env, wait_until

MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)


def days(category: str) -> datetime.timedelta:
    return datetime.timedelta(days=load_declaration().category(category).retention_days)


def seal_at(monkeypatch: pytest.MonkeyPatch, directory: Path, when: datetime.datetime, subject: str) -> str:
    """Seal a message as the site's mailer would have at ``when``; return the file's name."""
    before = set(directory.glob(f"*{SUFFIX}"))
    with monkeypatch.context() as m:
        m.setattr(timezone, "now", lambda: when)
        SealedFileBackend(file_path=str(directory)).send_messages(
            [EmailMessage(subject, "body", to=["wang.fang@example.com"])]
        )
    [path] = set(directory.glob(f"*{SUFFIX}")) - before
    return path.name


def session(expires: datetime.datetime) -> str:
    key = uuid.uuid4().hex
    Session.objects.create(session_key=key, session_data="e30:signed", expire_date=expires)
    return key


def task_result(status: str, finished: datetime.datetime | None) -> str:
    result = DBTaskResult.objects.create(
        status=status,
        args_kwargs={"args": [str(uuid.uuid4())], "kwargs": {}},
        task_path="piwarden.inquiries.tasks.send_acknowledgement",
        backend_name="default",
        queue_name="default",
        run_after=timezone.now() - datetime.timedelta(days=400),
        finished_at=finished,
        exception_class_path="",
        traceback="",
    )
    return str(result.pk)


def sign_in_records(attempted: datetime.datetime, username: str) -> None:
    """One row of each axes table, as a sign-in at ``attempted`` leaves them."""
    seen = {
        "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0",
        "username": username,
        "http_accept": "text/html",
        "path_info": "/backoffice/login/",
    }
    log = AccessLog.objects.create(**seen)
    failure = AccessFailureLog.objects.create(**seen)
    attempt = AccessAttempt.objects.create(**seen, get_data="", post_data="", failures_since_start=1)
    # attempt_time is auto_now_add: set it as the clock of that day would have.
    for model, pk in ((AccessLog, log.pk), (AccessFailureLog, failure.pk), (AccessAttempt, attempt.pk)):
        model.objects.filter(pk=pk).update(attempt_time=attempted)


def usernames(model: type[AccessLog] | type[AccessFailureLog] | type[AccessAttempt]) -> set[str]:
    return set(model.objects.values_list("username", flat=True))


def cookie_choice(given: datetime.datetime) -> str:
    consent_id = uuid.uuid4().hex
    CookieConsent.objects.create(
        consent_id=consent_id,
        action="reject_all",
        functional=False,
        analytics=False,
        gpc=False,
        cookies_version="0" * 16,
        policy_version="1.0",
        channel="banner",
        language="zh-hans",
        given_at=given,
    )
    return consent_id


def housekeeping() -> str:
    out = io.StringIO()
    call_command("housekeeping", "--once", stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def outbox(settings, tmp_path: Path) -> Path:
    directory = tmp_path / "outbox"
    settings.PIWARDEN_OUTBOX_DIR = directory
    return directory


@pytest.mark.django_db
@pytest.mark.duty("RET-02")
def test_one_run_deletes_exactly_what_is_past_its_declared_retention(outbox: Path, monkeypatch):
    now = timezone.now()
    old_mail = seal_at(monkeypatch, outbox, now - days("outbox_copies") - MINUTE, "Expired ABC")
    young_mail = seal_at(monkeypatch, outbox, now - days("outbox_copies") + HOUR, "Young DEF")
    expired_session = session(now - days("staff_sessions") - MINUTE)
    ended_session = session(now - MINUTE)  # over, but kept the day the declaration allows after expiry
    live_session = session(now + HOUR)
    old_task = task_result(TaskResultStatus.SUCCESSFUL, now - days("queued_tasks") - MINUTE)
    old_failed_task = task_result(TaskResultStatus.FAILED, now - days("queued_tasks") - MINUTE)
    young_task = task_result(TaskResultStatus.SUCCESSFUL, now - days("queued_tasks") + HOUR)
    waiting_task = task_result(TaskResultStatus.READY, None)  # queued long ago, never run: not finished
    sign_in_records(now - days("sign_in_records") - MINUTE, "expired-attempt")
    sign_in_records(now - days("sign_in_records") + HOUR, "kept-attempt")
    expired_challenge = CaptchaStore.objects.create(challenge="AB", response="ab", expiration=now - MINUTE).hashkey
    live_challenge = CaptchaStore.objects.create(challenge="CD", response="cd", expiration=now + HOUR).hashkey
    old_choice = cookie_choice(now - datetime.timedelta(days=COOKIE_CHOICE_RETENTION_DAYS) - MINUTE)
    young_choice = cookie_choice(now - datetime.timedelta(days=COOKIE_CHOICE_RETENTION_DAYS) + HOUR)

    output = housekeeping()

    assert {p.name for p in outbox.iterdir()} == {young_mail}
    assert old_mail not in {p.name for p in outbox.iterdir()}
    assert set(Session.objects.values_list("session_key", flat=True)) == {ended_session, live_session}
    assert expired_session not in output
    assert {str(pk) for pk in DBTaskResult.objects.values_list("pk", flat=True)} == {young_task, waiting_task}
    assert {old_task, old_failed_task}.isdisjoint(output)
    for model in (AccessLog, AccessFailureLog, AccessAttempt):
        assert usernames(model) == {"kept-attempt"}, model
    assert "sealed outbox copies (outbox_copies): 1 deleted" in output
    # The tables are the retention sweep's (piwarden.retention.rules), which the housekeeping runs.
    assert "staff_sessions (sessions.Session): 1 deleted" in output
    assert "queued_tasks (django_tasks_database.DBTaskResult): 2 deleted" in output
    assert "sign_in_records (axes.AccessLog): 1 deleted" in output
    assert "sign_in_records (axes.AccessFailureLog): 1 deleted" in output
    assert "sign_in_records (axes.AccessAttempt): 1 deleted" in output
    assert set(CaptchaStore.objects.values_list("hashkey", flat=True)) == {live_challenge}
    assert expired_challenge not in output
    assert "expired CAPTCHA challenges (not personal): 1 deleted" in output
    assert set(CookieConsent.objects.values_list("consent_id", flat=True)) == {young_choice}
    assert old_choice not in output
    assert "cookie choices past their retention (not personal): 1 deleted" in output

    [event] = AuditEvent.objects.filter(event_type="retention.swept")
    declaration = load_declaration()
    assert event.extra == {  # the CAPTCHA challenges are no person's data: not counted here
        "deleted": {"outbox_copies": 1},
        "retention_days": {"outbox_copies": declaration.category("outbox_copies").retention_days},
        "failed": [],
    }
    swept = AuditEvent.objects.filter(event_type="retention.batch")
    assert sorted((e.extra["model"], e.extra["rows"]) for e in swept) == [
        ("axes.AccessAttempt", 1),
        ("axes.AccessFailureLog", 1),
        ("axes.AccessLog", 1),
        ("django_tasks_database.DBTaskResult", 2),
        ("sessions.Session", 1),
    ]
    assert event.actor_kind == "system"
    assert verify_chain() is None

    # Idempotent: the next run finds nothing, deletes nothing and records nothing.
    again = housekeeping()
    # The retention sweep's rules (piwarden.retention.rules.SWEPT) run with the jobs: one line each,
    # and one for the audit log's cut (piwarden.retention.cut).
    assert again.count(": 0 deleted") == len(JOBS) + len(EXPIRIES) + len(SWEPT) + 1 == 34
    assert AuditEvent.objects.filter(event_type="retention.swept").count() == 1
    assert {p.name for p in outbox.iterdir()} == {young_mail}
    assert usernames(AccessLog) == {"kept-attempt"}


@pytest.mark.django_db
@pytest.mark.duty("RET-02")
def test_a_failing_job_is_reported_and_the_others_still_delete(outbox: Path, monkeypatch):
    now = timezone.now()
    seal_at(monkeypatch, outbox, now - days("outbox_copies") - MINUTE, "Expired ABC")
    session(now - days("staff_sessions") - MINUTE)
    task_result(TaskResultStatus.SUCCESSFUL, now - days("queued_tasks") - MINUTE)
    sign_in_records(now - days("sign_in_records") - MINUTE, "expired-attempt")
    # The table of one job is gone (rolled back with the test); one no retention rule reads (the
    # rule of person_lifecycle reads every table that links to a person, the archives' among them).
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(CaptchaStore._meta.db_table)}")

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="not every job ran"):
        call_command("housekeeping", "--once", stdout=out, stderr=err)

    assert "expired CAPTCHA challenges: failed (" in err.getvalue()
    assert list(outbox.iterdir()) == []
    # The retention sweep's rules ran all the same.
    assert not Session.objects.exists()
    assert not DBTaskResult.objects.exists()
    for model in (AccessLog, AccessFailureLog, AccessAttempt):
        assert not model.objects.exists()
    [event] = AuditEvent.objects.filter(event_type="retention.swept")
    assert event.extra["deleted"] == {"outbox_copies": 1}
    assert event.extra["failed"] == ["expired CAPTCHA challenges"]


def test_the_help_states_each_rule_with_the_declared_retention(capsys):
    with pytest.raises(SystemExit):
        call_command("housekeeping", "--help")
    text = " ".join(capsys.readouterr().out.split())
    declaration = load_declaration()
    rule = "(outbox_copies): sealed e-mail files sent more than {} days ago"
    assert rule.format(declaration.category("outbox_copies").retention_days) in text
    for category, table, start in (
        ("staff_sessions", "sessions.Session", "the session's expiry"),
        ("queued_tasks", "django_tasks_database.DBTaskResult", "the job's completion"),
        ("sign_in_records", "axes.AccessLog", "the sign-in attempt"),
        ("sign_in_records", "axes.AccessFailureLog", "the sign-in attempt"),
        ("account_login_log", "accounts.LoginRecord", "the sign-in attempt"),
    ):
        days_ = declaration.category(category).retention_days
        assert f"{category} ({table}): rows {days_} days after {start}" in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "automatic", "not_yet"),
    [
        ("/privacy/", "保存期限清理", "尚未实现自动删除"),
        ("/en/privacy/", "retention sweep", "not yet deleted automatically"),
    ],
)
def test_the_privacy_page_names_exactly_what_is_deleted_automatically(client, url: str, automatic: str, not_yet: str):
    """The page says which data is not yet deleted automatically: exactly the categories the retention
    rules keep (piwarden.retention.rules.Kept); every other one is swept, cut from the audit log or
    deleted by another job.  The sentence is P-29's (P-160 and P-161 after it say how the audit log
    and the status of one's information go)."""
    page = client.get(url).content.decode()
    [sentence] = [p for p in re.findall(r'data-promise="P-29"[^>]*>(.*?)</span>', page, re.DOTALL) if automatic in p]
    language = "en" if url.startswith("/en/") else "zh-hans"
    kept = {category.id for category, rule in rules_of(load_declaration()) if isinstance(rule, Kept)}
    # Today every category has a rule that removes it: the sentence then names none, and says nothing is left.
    assert (not_yet in sentence.lower()) == bool(kept)
    for category in load_declaration().categories:
        name = category.name.get(language).lower()
        assert (name in sentence.lower()) == (category.id in kept), category.id


def test_the_loop_outlives_a_database_it_cannot_reach_and_stops_on_sigterm(tmp_path: Path):
    """Run after run fails on the outage, said in one line each, and the process goes on."""
    env = operator_env(tmp_path / "var", free_port(), DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/none")
    log = tmp_path / "housekeeping.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # our own command
            [sys.executable, "-m", "piwarden", "housekeeping", "--every", "1"], env=env, stdout=out, stderr=out
        )
    try:
        wait_until(lambda: log.read_text().count("database unavailable") >= 2, "two runs to meet the outage")
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0
    assert "Traceback" not in log.read_text()
