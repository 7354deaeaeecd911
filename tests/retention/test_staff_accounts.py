"""A staff account and its training records go 1095 days after its deactivation (issue 10).

An administrator suspends a staff member through the staff page; the date is recorded, audited
and shown.  `piwarden retention sweep` run past the declared days removes the account's personal
data (its row stays as a tombstone with its id, which the audit log and the records of who did
what name) and its training records, and nothing else; before the deadline nothing goes, a legal
hold on either category keeps both, and reactivating stops the clock.
"""

from __future__ import annotations

import datetime
import io
from http import HTTPStatus
from pathlib import Path

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from piwarden.audit.models import AuditEvent
from piwarden.people.registry import export_staff
from piwarden.policy.declaration import load_declaration
from piwarden.retention.actions import lift_hold, place_hold
from piwarden.staff.models import (
    AccessGrant,
    Authenticator,
    Deactivation,
    KnownDevice,
    StaffPreference,
    TrainingNotice,
    TrainingRecord,
)
from piwarden.staff.personal_data import DELETED_WITH_ACCOUNT, KEEP_THE_ID
from tests.conftest import make_staff, sign_in
from tests.retention.test_sweep import grant

pytestmark = pytest.mark.django_db

MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
NOW = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
KEPT = datetime.timedelta(days=load_declaration().category("staff_accounts").retention_days)
OLD = NOW - KEPT - HOUR  # suspended just past the retention at NOW
YOUNG = NOW - KEPT + HOUR  # … and just inside it
STAFF = "/backoffice/staff/"


def signed_in(user: User) -> Client:
    client = Client()
    response = sign_in(client, user)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    return client


def change(admin: User, target: User, action: str, at: datetime.datetime) -> None:
    """The administrator signs in and suspends or reactivates ``target`` on the staff page at ``at``."""
    with time_machine.travel(at, tick=False):
        response = signed_in(admin).post(f"{STAFF}{target.pk}/", {"action": action})
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]


def in_use(admin: User) -> None:
    """The site in use lately (a sign-in): the sweep's clock guard trusts the clock at NOW."""
    with time_machine.travel(NOW - 3 * HOUR, tick=False):
        signed_in(admin)


def staff_page(admin: User, language: str, at: datetime.datetime) -> str:
    with time_machine.travel(at, tick=False):
        return signed_in(admin).get(STAFF, headers={"accept-language": language}).content.decode()


def sweep(at: datetime.datetime) -> str:
    out = io.StringIO()
    with time_machine.travel(at, tick=False):
        call_command("retention", "sweep", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def counts() -> dict[str, int]:
    """Rows per table, every installed model's and every many-to-many table's."""
    return {m._meta.label: m._default_manager.count() for m in apps.get_models(include_auto_created=True)}


@pytest.fixture
def staff(tmp_path: Path) -> dict[str, User]:
    """An administrator (dora), and two sales consultants (alice, erin), made a month before OLD."""
    with time_machine.travel(OLD - datetime.timedelta(days=30), tick=False):
        made = {
            "dora": make_staff("dora", "admin", tmp_path, "dora@example.com"),
            "alice": make_staff("alice", "sales", tmp_path, "alice@example.com"),
            "erin": make_staff("erin", "sales", tmp_path, "erin@example.com"),
        }
        User.objects.filter(pk=made["alice"].pk).update(first_name="Alice", last_name="Wang")
    return made


def lived(user: User) -> None:
    """What a staff member leaves behind at work: a sign-in (a known device, audit events naming
    them), a console language, a training notice, and a grant they asked for."""
    with time_machine.travel(OLD - datetime.timedelta(days=20), tick=False):
        client = signed_in(user)
        assert client.post("/backoffice/preferences/", {"language": "en"}).status_code == HTTPStatus.FOUND
    TrainingNotice.objects.create(
        staff=user, kind="due_soon", expires_on=OLD.date(), created_at=OLD - datetime.timedelta(days=25)
    )
    grant(user, NOW - 2 * HOUR)


@pytest.mark.duty("RET-01")
def test_suspending_records_the_date_audits_and_shows_it_and_reactivating_clears_it(staff):
    dora, alice = staff["dora"], staff["alice"]
    change(dora, alice, "suspend", OLD)
    assert Deactivation.objects.get(user=alice).deactivated_at == OLD
    [suspended] = AuditEvent.objects.filter(event_type="staff.suspended")
    assert (suspended.actor_id, suspended.extra["staff"]) == (dora.pk, alice.pk)
    assert suspended.occurred_at == OLD
    assert suspended.extra["deactivated_at"] == OLD.isoformat()

    deleted_on = (OLD + KEPT).astimezone(datetime.timezone(datetime.timedelta(hours=8))).date()
    english = staff_page(dora, "en", OLD + 10 * MINUTE)
    chinese = staff_page(dora, "zh-hans", OLD + 20 * MINUTE)
    assert (
        f"Suspended on {OLD.date().isoformat()}. Unless it is reactivated, the account and its training records "
        f"are due for deletion on {deleted_on.isoformat()}." in english
    )
    zh = f"于 {OLD.date().isoformat()} 暂停。如未恢复，该账号及其培训记录将于 {deleted_on.isoformat()} 到期删除。"
    assert zh in chinese

    change(dora, alice, "reactivate", OLD + HOUR)
    assert not Deactivation.objects.filter(user=alice).exists()
    assert AuditEvent.objects.filter(event_type="staff.reactivated", extra__staff=alice.pk).count() == 1
    assert "Suspended on" not in staff_page(dora, "en", OLD + 2 * HOUR)

    # Reactivated: past the declared days nothing of hers goes.
    in_use(dora)
    before = counts()
    sweep(NOW)
    assert User.objects.get(pk=alice.pk).username == "alice"
    assert TrainingRecord.objects.filter(staff=alice).exists()
    assert counts()["auth.User"] == before["auth.User"]


@pytest.mark.duty("RET-01")
@pytest.mark.duty("RET-02")
def test_the_sweep_deletes_the_account_and_its_training_records_after_1095_days_and_nothing_else(staff):
    dora, alice, erin = staff["dora"], staff["alice"], staff["erin"]
    lived(alice)
    change(dora, alice, "suspend", OLD)
    change(dora, erin, "suspend", YOUNG)
    in_use(dora)
    events_naming_alice = AuditEvent.objects.filter(actor=alice).count()
    assert events_naming_alice >= 2  # her sign-in and her language

    sweep(NOW - 2 * HOUR)  # an hour before her deadline: nothing of hers goes (what else was due, did)
    assert Deactivation.objects.filter(user=alice).exists()
    assert TrainingRecord.objects.filter(staff=alice).exists()
    before = counts()
    events_before = AuditEvent.objects.count()

    output = sweep(NOW)

    after = counts()
    changed = {label: after[label] - before[label] for label in before if after[label] != before[label]}
    added_events = changed.pop("audit.AuditEvent")
    assert changed == {
        "staff.TrainingRecord": -1,
        "staff.TrainingNotice": -1,
        "staff.Authenticator": -1,
        "staff.KnownDevice": -1,
        "staff.StaffPreference": -1,
        "staff.Deactivation": -1,
        "auth.User_groups": -1,
    }
    new = list(AuditEvent.objects.order_by("id")[events_before:])
    assert added_events == len(new) == 3
    assert {(e.event_type, e.extra["model"], e.extra["rows"]) for e in new} == {
        ("retention.batch", "staff.TrainingRecord", 1),
        ("retention.batch", "staff.TrainingNotice", 1),
        ("retention.batch", "auth.User", 1),
    }
    assert "staff_accounts (auth.User): 1 deleted" in output
    assert "staff_training (staff.TrainingRecord): 1 deleted" in output

    # Her row is a tombstone: the id alone, which the audit log and her grant still name.
    gone = User.objects.get(pk=alice.pk)
    assert gone.username == f"deleted:{alice.pk}"
    assert (gone.first_name, gone.last_name, gone.email) == ("", "", "")
    assert not gone.has_usable_password()
    assert "argon2" not in gone.password
    assert (gone.is_active, gone.is_staff, gone.is_superuser) == (False, False, False)
    assert gone.last_login is None
    assert gone.date_joined.year == 1970
    assert not gone.groups.exists()
    assert Authenticator.objects.filter(user=alice).count() == 0
    assert not KnownDevice.objects.filter(user=alice).exists()
    assert not StaffPreference.objects.filter(user=alice).exists()
    assert AuditEvent.objects.filter(actor=alice).count() == events_naming_alice
    assert AccessGrant.objects.filter(requester=alice).count() == 1
    assert f'data-username="deleted:{alice.pk}"' not in staff_page(dora, "en", NOW + 10 * MINUTE)  # no longer staff
    # The audit chain still verifies end to end.
    out = io.StringIO()
    call_command("audit", "seal", stdout=out)
    call_command("audit", "verify", "--quiet", stdout=out)
    assert "the log is intact" in out.getvalue()

    # Erin, suspended two hours later, is kept until her own deadline; the next sweep finds nothing.
    assert User.objects.get(pk=erin.pk).username == "erin"
    assert Deactivation.objects.filter(user=erin).exists()
    assert TrainingRecord.objects.filter(staff=erin).exists()
    again = sweep(NOW + HOUR / 2)
    assert "staff_accounts (auth.User): 0 deleted" in again
    sweep(NOW + 2 * HOUR)
    assert User.objects.get(pk=erin.pk).username == f"deleted:{erin.pk}"


@pytest.mark.duty("RET-02")
@pytest.mark.parametrize("category", ["staff_accounts", "staff_training"])
def test_a_hold_on_either_category_keeps_the_account_and_lifting_it_lets_it_go(staff, category: str):
    dora, alice = staff["dora"], staff["alice"]
    change(dora, alice, "suspend", OLD)
    in_use(dora)
    with time_machine.travel(NOW - HOUR, tick=False):
        hold = place_hold(category=category, reason="Labour arbitration 2026-3", ends_on=NOW.date(), by=dora)
    output = sweep(NOW)
    assert User.objects.get(pk=alice.pk).username == "alice"  # the account is kept (with its training)
    assert Deactivation.objects.filter(user=alice).exists()
    assert f"kept by hold(s) {hold.pk} on the category" in output
    if category == "staff_accounts":
        # Not the training records: their own rule went ahead.
        assert not TrainingRecord.objects.filter(staff=alice).exists()
    else:
        assert TrainingRecord.objects.filter(staff=alice).exists()  # and the account they name is held back
    with time_machine.travel(NOW + HOUR, tick=False):
        lift_hold(hold.pk, reason="Arbitration 2026-3 settled", by=dora)
    sweep(NOW + 2 * HOUR)
    assert User.objects.get(pk=alice.pk).username == f"deleted:{alice.pk}"
    assert not TrainingRecord.objects.filter(staff=alice).exists()


@pytest.mark.duty("RET-02")
def test_the_plan_shows_the_staff_rules_and_what_holds_them(staff):
    dora = staff["dora"]
    change(dora, staff["alice"], "suspend", OLD)
    change(dora, staff["erin"], "suspend", NOW - KEPT + 2 * datetime.timedelta(days=1))
    out = io.StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("retention", "plan", "--days", "10", stdout=out)
    text = out.getvalue()
    accounts = (
        "\nstaff_accounts (1095 days from the account's deactivation; delete): due now 1; after the next 10 days 0"
    )
    assert f"{accounts}\n  {(NOW + 2 * datetime.timedelta(days=1)).date().isoformat()}: 1\n" in text
    training = "\nstaff_training [{}] (1095 days from the deactivation of the staff account; delete): due now {};"
    assert training.format("staff.TrainingRecord", 1) in text  # alice's (no notice was sent to her)
    assert training.format("staff.TrainingNotice", 0) in text
    assert "not recorded" not in text

    with time_machine.travel(NOW, tick=False):
        hold = place_hold(category="staff_training", reason="Labour arbitration 2026-3", ends_on=NOW.date(), by=dora)
        out = io.StringIO()
        call_command("retention", "plan", "--days", "10", stdout=out)
    assert f"held back: hold {hold.pk} on staff_training, which these name until {NOW.date()}" in out.getvalue()


def test_the_staff_members_export_names_the_deactivation(staff: dict[str, User]):
    change(staff["dora"], staff["alice"], "suspend", OLD)
    alice = User.objects.get(pk=staff["alice"].pk)
    records = [r for r in export_staff(alice, load_declaration()) if isinstance(r, dict) and "username" in r]
    assert records[0]["deactivated_at"] == OLD.isoformat()


def test_every_link_to_a_staff_account_is_decided():
    """A new foreign key to auth.User must say whether the account's deletion deletes it or keeps the id."""
    links = {
        f"{relation.related_model._meta.label}.{relation.field.name}"
        for relation in User._meta.get_fields(include_hidden=True)
        if relation.auto_created and not relation.concrete
    }
    assert links == set(DELETED_WITH_ACCOUNT) | set(KEEP_THE_ID)
    assert not set(DELETED_WITH_ACCOUNT) & set(KEEP_THE_ID)
