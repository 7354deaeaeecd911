"""Data is read only through the gate: no staff page and no task opens a data key on its own.

Personal fields decrypt under the person's data key, and a key must be unwrapped before any of
its fields can be read.  The vault announces every unwrap (``data_key_unwrapped``), so this
counts real unwraps on the real code path:

* every page of the staff console, for every role and for a visitor who is not signed in,
  over requests nobody has revealed: not one key is unwrapped (masked means never decrypted);
* every background task over such requests: no key is unwrapped except inside a use the gate
  allowed, for the person that use is about (the acknowledgement reads the e-mail address it
  writes to), or, in a use about nobody stored yet, a key that is no person's; when the gate
  refuses, nothing at all.
"""

from __future__ import annotations

import datetime
import importlib
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core import mail
from django.tasks import Task
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from piwarden.accounts.actions import SignUp, sign_up
from piwarden.backoffice import urls as backoffice_urls
from piwarden.children.actions import request_guardian_consent
from piwarden.children.tasks import erase_child_data
from piwarden.incidents.actions import notify_persons, publish_notice
from piwarden.inquiries.models import Inquiry
from piwarden.monitoring.models import Alert, Rule
from piwarden.monitoring.tasks import send_alert_mail
from piwarden.people.actions import find_or_create_person
from piwarden.people.models import Person
from piwarden.processing import gate
from piwarden.revisions.actions import publish_version
from piwarden.rights.actions import (
    RequestInput,
    complete_request,
    remind_and_escalate,
    submit_request,
    verify_request,
)
from piwarden.rights.archive_tasks import build_archive_task
from piwarden.rights.models import ActingAs, RequestKind, RightsRequest, VerificationCode
from piwarden.security.models import Refusal, SecurityPeriod
from piwarden.staff.actions import open_access_review, send_training_notices
from piwarden.staff.tasks import send_enrolment_mail
from piwarden.staff.training import expires_on
from piwarden.staff.training import today as training_today
from piwarden.vault.blind import email_index
from piwarden.vault.crypto import data_key_unwrapped, forget_cached_keys
from tests.backoffice.test_staff_console import staff_client
from tests.conftest import consultation_data, make_staff
from tests.downloads.conftest import publish
from tests.incidents.making import acting, ready_to_notify
from tests.inquiries.test_mail import PEOPLE, run_worker
from tests.policy.test_declaration import edited
from tests.revisions.test_actions import NEXT

TEMPLATES = Path(backoffice_urls.__file__).parent / "templates" / "backoffice"


@pytest.fixture
def unwrapped() -> Iterator[list[tuple[uuid.UUID, gate.Permit | gate.Unattributed | None]]]:
    """Each data key unwrapped while the test runs, with the gate's permit then in force."""
    seen: list[tuple[uuid.UUID, gate.Permit | gate.Unattributed | None]] = []

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


def a_refusal(settings: Any) -> str:
    """A refusal by the rate limit (its reference), as a flooding browser meets it."""
    settings.PIWARDEN_RIGHTS_RATE = "1/d"
    client = Client(REMOTE_ADDR="198.51.100.201")
    for _ in range(2):
        client.post(reverse("site:rights_status"), {"reference": "ABCDEFGHJK", "email": "x@example.com"})
    settings.PIWARDEN_RIGHTS_RATE = "10000/m"
    return Refusal.objects.get().reference


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
    # incidents: an incident reported, its notice written and published (every page of it renders)
    officer = acting(User.objects.get(username="staff-po"))
    incident = ready_to_notify(officer)
    publish_notice(officer, incident.slug)
    refusal = a_refusal(settings)  # secevents: a refusal's page (its client masked when refused)
    settings.PIWARDEN_DOWNLOADS_DIR = tmp_path / "downloads"
    resource = publish(User.objects.get(username="staff-admin"))  # downloads: a resource's page
    forget_cached_keys()
    unwrapped.clear()  # whatever signing in did (it reads no person's data anyway)
    rendered: set[str] = set()
    for pattern in backoffice_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        reference = {"rights_request": rights_request.reference, "refusal": refusal}.get(
            pattern.name or "", inquiries[0].reference
        )
        kwargs: dict[str, object] = {"reference": reference} if "reference" in pattern.pattern.converters else {}
        if "review_id" in pattern.pattern.converters:
            kwargs = {"review_id": review.pk}
        objects = {
            "resource_id": resource.pk,
            "alert_id": alert.pk,
            "user_id": alert.staff_id,
            "grant_id": 999_999,
            "hold_id": 999_999,
            "uid": "MQ",
            "token": "x-y",
        }
        objects["slug"] = incident.slug
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


def queue_childrens_tasks() -> uuid.UUID:
    """children: a guardian's e-mail for a child's sign-up (no person exists before the guardian
    consents, CHD-01: it reads the guardian's address under the request's own key, in the use the
    gate allowed about nobody stored yet), and the erasure task for a child nobody flagged (nothing
    to erase).  The request's key."""
    child = find_or_create_person(email="child.unwrap@example.com")
    asked = request_guardian_consent(
        {"email": "pending.unwrap@example.com"}, "guardian.unwrap@example.com", "zh-hans", on_consent=_nobody
    )
    erase_child_data.enqueue(str(child.pk))
    return asked.data_key_id


def _nobody(sealed: dict[str, str]) -> None:
    """The guardian never consents here."""


def about_nobody_only_keys_of_nobody(unwrapped: list[tuple[uuid.UUID, object]], awaiting: uuid.UUID) -> None:
    """children: the guardian's e-mail reads the request's own key (no person's) in the use the gate
    allowed about nobody stored yet; the uses about nobody are then set aside."""
    about_nobody = {(key, p.decision.purpose) for key, p in unwrapped if isinstance(p, gate.Unattributed)}
    assert about_nobody == {(awaiting, "children_protection")}
    assert not Person.objects.filter(data_key_id=awaiting).exists()
    unwrapped[:] = [(key, permit) for key, permit in unwrapped if not isinstance(permit, gate.Unattributed)]


def queue_account_mail() -> None:
    """accounts: an account's confirmation e-mail, its holder restricted (the gate refuses it)."""
    sign_up(SignUp("account.holder@example.com", "", datetime.date(1990, 5, 17), "", "x" * 20, "en"))
    Person.objects.filter(email_index=email_index("account.holder@example.com")).update(restricted_at=timezone.now())


def queue_staff_mail(tmp_path: Any, officer: User) -> None:
    """staff-authz: a staff sign-in from a browser new to the account queues an alert to the staff
    member; access-reviews: the officer's training notice (it names the staff member, no visitor) and
    the reviewers' e-mail of an opened review (no person's data); monitoring: an alert's e-mail to the
    security auditors; staff-admin: a new member's enrolment link."""
    noticed = make_staff("staff-noticed", "sales", tmp_path, email="staff-noticed@example.com")
    staff_client(noticed)  # signs in (it asserts the redirect)
    User.objects.filter(pk=officer.pk).update(email="staff-officer@example.com")
    assert send_training_notices(on=expires_on(training_today()))
    open_access_review()
    make_staff("staff-auditor", "auditor", tmp_path, email="staff-auditor@example.com")
    send_alert_mail.enqueue(str(an_alert().pk))
    invited = User.objects.create_user("staff-invited", "staff-invited@example.com", is_staff=True)
    send_enrolment_mail.enqueue(str(invited.pk))


@pytest.mark.django_db(transaction=True)  # the worker commits and closes connections
def test_no_task_unwraps_a_data_key_outside_a_use_the_gate_allowed(unwrapped, settings, tmp_path, declared) -> None:
    settings.PIWARDEN_EXPORTS_DIR = tmp_path / "exports"
    # Zhang Wei restricts processing before the worker runs: every task runs over her request.
    zhang = submitted("zh-hans")
    Person.objects.filter(pk=zhang.person_id).update(restricted_at=timezone.now())
    queue_account_mail()
    liu = received_rights_request("liu.yang@example.com")  # queues the code and receipt e-mails
    # She also asks for a copy of her data (answering a rights request survives the restriction).
    build_archive_task.enqueue(str(zhang.person_id), "R-UNWRAP")
    # rights-queue: a completed request (its e-mail), and the staff's reminder and escalation.
    chen = received_rights_request("chen.jing@example.com")
    officer = make_staff("staff-officer", "privacy_officer", tmp_path)
    officer.is_verified = lambda: True  # type: ignore[attr-defined]  # as django-otp marks a verified session
    complete_request(officer, chen.reference, result="We have answered your question by this e-mail.")
    zhou = received_rights_request("zhou.min@example.com")
    liu.refresh_from_db()
    assert liu.due_on is not None
    RightsRequest.objects.filter(pk=zhou.pk).update(due_on=liu.due_on - datetime.timedelta(days=1))
    done = remind_and_escalate(today=liu.due_on)
    assert (done.reminded, done.escalated) == ((liu.reference,), (zhou.reference,))
    queue_staff_mail(tmp_path, officer)
    # incidents: the notices of an incident to the persons whose consultation data it touched (Zhang too:
    # a notice of a breach survives her restriction).
    incident = ready_to_notify(officer)
    notify_persons(officer, incident.slug, by_categories=True, addresses=[])
    awaiting = queue_childrens_tasks()
    forget_cached_keys()
    unwrapped.clear()
    run_worker()
    about_nobody_only_keys_of_nobody(unwrapped, awaiting)
    ran = set(DBTaskResult.objects.values_list("task_path", flat=True))
    walked_later = {"piwarden.revisions.tasks.notify_policy_change"}  # below, once the policy has changed
    assert set(every_task()) - walked_later <= ran, f"no request queues {sorted(set(every_task()) - ran)}: walk it here"
    # Zhang's acknowledgement was refused, the sales notice holds no personal data; the archive read
    # and sealed her data, and each rights e-mail (receipts, the completion) read its requester's
    # address, inside the uses the gate allowed for answering their requests; the staff's reminder
    # and escalation read nobody's; the incident's notice read Zhang's address, inside the use the gate
    # allowed for notifying her.
    # secevents: the archive reads Zhang's security events too, sealed under the month's key (not hers:
    # the law keeps them past her erasure), inside the same permit for her.
    months = set(SecurityPeriod.objects.values_list("data_key_id", flat=True))
    assert unwrapped
    for key_id, permit in unwrapped:
        assert isinstance(permit, gate.Permit)
        assert key_id == permit.person.data_key_id or (key_id in months and permit.person == zhang.person)
        assert permit.decision.purpose in {"answer_rights_request", "incident_notice"}
    persons = {r.data_key_id for r in (liu, chen, zhou)} | {zhang.data_key_id}
    assert {key for key, _permit in unwrapped} - months == persons
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
    assert isinstance(permit, gate.Permit)
    assert key_id == wang.data_key_id == permit.person.data_key_id
    assert permit.decision.purpose == "respond_inquiry"

    change_notices_read_only_inside_the_gate(unwrapped, declared, (liu, chen, zhou, wang))


def change_notices_read_only_inside_the_gate(unwrapped, declared, people) -> None:
    # policy versions: a material change is e-mailed to everyone with contact details held, each
    # address read inside the use the gate allowed for telling that person (Zhang, restricted, is refused).
    publish_version()
    declared(edited(('hotline = "95015"', 'hotline = "95016"'), *NEXT))
    mail.outbox.clear()
    publish_version(notice_zh="热线变更。", notice_en="The hotline changed.")
    forget_cached_keys()
    unwrapped.clear()
    run_worker()
    told = {key for key, _permit in unwrapped}
    assert told == {r.data_key_id for r in people}
    assert {permit.decision.purpose for _key, permit in unwrapped if permit is not None} == {"policy_change_notice"}
    assert all(isinstance(permit, gate.Permit) and key == permit.person.data_key_id for key, permit in unwrapped)
    assert len(mail.outbox) == 4
    assert set(every_task()) <= set(DBTaskResult.objects.values_list("task_path", flat=True))
