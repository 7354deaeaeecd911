"""Data is read only through the gate: no staff page and no task opens a data key on its own.

Personal fields decrypt under the person's data key, and a key must be unwrapped before any of
its fields can be read.  The vault announces every unwrap (``data_key_unwrapped``), so this
counts real unwraps on the real code path:

* every page of the staff console, for every role and for a visitor who is not signed in,
  over requests nobody has revealed: not one key is unwrapped (masked means never decrypted);
* every background task over such requests: no key is unwrapped except inside a use the gate
  allowed, for the person that use is about (the acknowledgement reads the e-mail address it
  writes to); when the gate refuses, nothing at all.
"""

from __future__ import annotations

import datetime
import importlib
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core import mail
from django.tasks import Task
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from piwarden.backoffice import urls as backoffice_urls
from piwarden.inquiries.models import Inquiry
from piwarden.monitoring.models import Alert, Rule
from piwarden.monitoring.tasks import send_alert_mail
from piwarden.people.models import Person
from piwarden.processing import gate
from piwarden.rights.actions import (
    RequestInput,
    complete_request,
    remind_and_escalate,
    submit_request,
    verify_request,
)
from piwarden.rights.archive_tasks import build_archive_task
from piwarden.rights.models import ActingAs, RequestKind, RightsRequest, VerificationCode
from piwarden.staff.actions import open_access_review, send_training_notices
from piwarden.staff.tasks import send_enrolment_mail
from piwarden.staff.training import expires_on
from piwarden.staff.training import today as training_today
from piwarden.vault.crypto import data_key_unwrapped, forget_cached_keys
from tests.backoffice.test_staff_console import staff_client
from tests.conftest import consultation_data, make_staff
from tests.downloads.conftest import publish
from tests.inquiries.test_mail import PEOPLE, run_worker

TEMPLATES = Path(backoffice_urls.__file__).parent / "templates" / "backoffice"


@pytest.fixture
def unwrapped() -> Iterator[list[tuple[uuid.UUID, gate.Permit | None]]]:
    """Each data key unwrapped while the test runs, with the gate's permit then in force."""
    seen: list[tuple[uuid.UUID, gate.Permit | None]] = []

    def note(sender: object, *, key_id: uuid.UUID, **kwargs: object) -> None:
        seen.append((key_id, gate.permit_in_force()))

    data_key_unwrapped.connect(note, dispatch_uid="test_nothing_unwrapped")
    yield seen
    data_key_unwrapped.disconnect(dispatch_uid="test_nothing_unwrapped")


def submitted(language: str) -> Inquiry:
    response = Client().post(
        "/en/consultation/" if language == "en" else "/consultation/", consultation_data(**PEOPLE[language])
    )
    assert response.status_code == HTTPStatus.FOUND
    return Inquiry.objects.get(reference=response["Location"].split("ref=")[1].split("&")[0])


def received_rights_request(email: str) -> RightsRequest:
    """A rights request verified with its code (read from its row): its code and receipt e-mails queued."""
    given = RequestInput(kind=RequestKind.ACCESS, email=email, details="", acting_as=ActingAs.SELF, language="en")
    request = submit_request(given)
    code = VerificationCode.objects.get(request=request).sealed_code
    assert code is not None
    assert verify_request(request.reference, code).ok  # the code e-mail then finds nothing left to send
    return request


def every_task() -> dict[str, Task[..., object]]:
    """The tasks of every piwarden app, by their path (a new one is walked without editing this file)."""
    found: dict[str, Task[..., object]] = {}
    for config in apps.get_app_configs():
        if not config.name.startswith("piwarden."):
            continue
        for path in sorted(Path(config.path).glob("*tasks.py")):  # tasks.py, and rights' archive_tasks.py
            module = importlib.import_module(f"{config.name}.{path.stem}")
            found.update({value.module_path: value for value in vars(module).values() if isinstance(value, Task)})
    return found


def an_alert() -> Alert:
    """A monitoring alert about a staff member: ids and counts only."""
    now = timezone.now()
    staff = User.objects.filter(is_staff=True).order_by("pk").first()
    return Alert.objects.create(
        rule=Rule.values[0],
        staff=staff,
        events=31,
        threshold=30,
        window_minutes=10,
        first_seq=1,
        last_seq=31,
        first_at=now,
        last_at=now,
        raised_at=now,
    )


def test_no_staff_page_unwraps_a_data_key(db: None, tmp_path: Path, unwrapped, settings) -> None:
    inquiries = [submitted("zh-hans"), submitted("en")]
    rights_request = received_rights_request("he.li@example.com")  # rights-queue: its page is walked too
    visitors = {
        "anonymous": Client(),
        **{role: staff_client(make_staff(f"staff-{role}", role, tmp_path)) for role in ("sales", "auditor", "admin")},
        "privacy_officer": staff_client(make_staff("staff-po", "privacy_officer", tmp_path)),
    }
    review = open_access_review()  # access-reviews: a campaign's page is walked too
    alert = an_alert()  # monitoring: an alert's page
    settings.PIWARDEN_DOWNLOADS_DIR = tmp_path / "downloads"
    resource = publish(User.objects.get(username="staff-admin"))  # downloads: a resource's page
    forget_cached_keys()
    unwrapped.clear()  # whatever signing in did (it reads no person's data anyway)
    rendered: set[str] = set()
    for pattern in backoffice_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        reference = rights_request.reference if pattern.name == "rights_request" else inquiries[0].reference
        kwargs: dict[str, object] = {"reference": reference} if "reference" in pattern.pattern.converters else {}
        if "review_id" in pattern.pattern.converters:
            kwargs = {"review_id": review.pk}
        objects = {
            "resource_id": resource.pk,
            "alert_id": alert.pk,
            "user_id": alert.staff_id,
            "grant_id": 999_999,
            "uid": "MQ",
            "token": "x-y",
        }
        kwargs |= {name: value for name, value in objects.items() if name in pattern.pattern.converters}
        url = reverse(f"backoffice:{pattern.name}", kwargs=kwargs)
        for client in visitors.values():
            response = client.get(url, follow=True)
            rendered |= {t.name for t in response.templates}
    # A failed sign-in, then the lockout page.
    intruder, guess = Client(), {"username": "staff-sales", "password": "guess", "otp_token": "000000"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = intruder.post(reverse("backoffice:login"), guess)
        rendered |= {t.name for t in response.templates}

    assert unwrapped == []
    pages = {f"backoffice/{p.name}" for p in TEMPLATES.glob("*.html")}
    assert pages <= rendered, f"not rendered: {sorted(pages - rendered)}"


@pytest.mark.django_db(transaction=True)  # the worker commits and closes connections
def test_no_task_unwraps_a_data_key_outside_a_use_the_gate_allowed(unwrapped, settings, tmp_path) -> None:
    settings.PIWARDEN_EXPORTS_DIR = tmp_path / "exports"
    # Zhang Wei restricts processing before the worker runs: every task runs over her request.
    zhang = submitted("zh-hans")
    Person.objects.filter(pk=zhang.person_id).update(restricted_at=timezone.now())
    liu = received_rights_request("liu.yang@example.com")  # queues the code and receipt e-mails
    # She also asks for a copy of her data (answering a rights request survives the restriction).
    build_archive_task.enqueue(str(zhang.person_id), "R-UNWRAP")
    # rights-queue: a completed request (its e-mail), and the staff's reminder and escalation.
    chen = received_rights_request("chen.jing@example.com")
    officer = make_staff("staff-officer", "privacy_officer", tmp_path)
    officer.is_verified = lambda: True  # type: ignore[attr-defined]  # as django-otp marks a verified session
    # staff-authz: a staff sign-in from a browser new to the account queues an alert to the staff member.
    noticed = make_staff("staff-noticed", "sales", tmp_path, email="staff-noticed@example.com")
    staff_client(noticed)  # signs in (it asserts the redirect)
    complete_request(officer, chen.reference, result="We have answered your question by this e-mail.")
    zhou = received_rights_request("zhou.min@example.com")
    liu.refresh_from_db()
    assert liu.due_on is not None
    RightsRequest.objects.filter(pk=zhou.pk).update(due_on=liu.due_on - datetime.timedelta(days=1))
    done = remind_and_escalate(today=liu.due_on)
    assert (done.reminded, done.escalated) == ((liu.reference,), (zhou.reference,))
    # access-reviews: the officer's training notice (it names the staff member, no visitor).
    User.objects.filter(pk=officer.pk).update(email="staff-officer@example.com")
    assert send_training_notices(on=expires_on(training_today()))
    open_access_review()  # and the reviewers' e-mail that it opened (no person's data)
    # monitoring: an alert's e-mail to the security auditors; staff-admin: a new member's enrolment link.
    make_staff("staff-auditor", "auditor", tmp_path, email="staff-auditor@example.com")
    send_alert_mail.enqueue(str(an_alert().pk))
    invited = User.objects.create_user("staff-invited", "staff-invited@example.com", is_staff=True)
    send_enrolment_mail.enqueue(str(invited.pk))
    forget_cached_keys()
    unwrapped.clear()
    run_worker()
    ran = set(DBTaskResult.objects.values_list("task_path", flat=True))
    assert set(every_task()) <= ran, f"no request queues {sorted(set(every_task()) - ran)}: walk it here"
    # Zhang's acknowledgement was refused, the sales notice holds no personal data; the archive read
    # and sealed her data, and each rights e-mail (receipts, the completion) read its requester's
    # address, inside the uses the gate allowed for answering their requests; the staff's reminder
    # and escalation read nobody's.
    assert unwrapped
    for key_id, permit in unwrapped:
        assert permit is not None
        assert key_id == permit.person.data_key_id
        assert permit.decision.purpose == "answer_rights_request"
    assert {key for key, _permit in unwrapped} == {r.data_key_id for r in (liu, chen, zhou)} | {zhang.data_key_id}
    requesters = ["chen.jing@example.com", "liu.yang@example.com", "zhou.min@example.com"]
    assert sorted(r for m in mail.outbox for r in m.to if r in requesters) == sorted([*requesters, requesters[0]])
    # The reminder, the escalation, and (access-reviews) the opened access review's notice.
    assert [m.to for m in mail.outbox].count([settings.PIWARDEN_PRIVACY_OFFICER_EMAIL]) == 3
    mail.outbox[:] = [m for m in mail.outbox if m.to == [settings.PIWARDEN_SALES_EMAIL]]

    # Wang Fang does not: the acknowledgement reads her address, inside the use the gate allowed.
    wang = submitted("en")
    forget_cached_keys()
    unwrapped.clear()
    run_worker()
    assert [m.to for m in mail.outbox[1:]].count([PEOPLE["en"]["email"]]) == 1
    assert len(unwrapped) == 1
    key_id, permit = unwrapped[0]
    assert permit is not None
    assert key_id == wang.data_key_id == permit.person.data_key_id
    assert permit.decision.purpose == "respond_inquiry"
