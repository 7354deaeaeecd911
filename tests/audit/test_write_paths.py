"""One named write path per state change: who may write to the audit log, and how.

An audit event belongs to the function that makes the change it records (DESIGN invariant 3), so
``record_event`` is called only from

* ``actions.py`` modules: the write paths, each an entry point in its own transaction;
* ``access.py`` modules: the read paths, which record a reading or a refusal;
* ``processing/``: the gate, which records refusals and non-consent bases;
* ``audit/``: the log itself.

Views, management commands, tasks and middleware call one of those.  The source is read with
``ast``, so an aliased import or a call through the module counts as a call.  Every other module
that may call it is listed in ``EXCEPTIONS`` with its reason, and an exception that is no longer
used fails the test, so the list cannot outlive its reason.

The entry points themselves are durable transactions: called inside another transaction by
mistake, they refuse instead of becoming part of it.
"""

from __future__ import annotations

import ast
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

from piwarden.inquiries.actions import assign_inquiry
from piwarden.people import ledger
from piwarden.people.actions import (
    correct_person_data,
    erase_person,
    find_or_create_person,
    lift_restriction,
    record_replay,
    replay_erasure,
    restrict_processing,
    withdraw,
)
from piwarden.people.models import Person
from piwarden.retention import actions as retention_actions
from piwarden.site.actions import sweep_retention
from piwarden.staff.actions import (
    create_staff,
    end_expired_session,
    record_failed_sign_in,
    set_console_language,
    sign_in_staff,
    sign_out_staff,
)
from piwarden.vault.access import open_outbox_messages
from piwarden.vault.actions import prune_outbox

SOURCE = Path(__file__).resolve().parents[2] / "src" / "piwarden"
NAME = "record_event"

ALLOWED_MODULES = {"actions.py", "access.py"}
ALLOWED_PACKAGES = {"audit", "processing"}

# Modules outside the rule above that may call record_event, each with its reason.
EXCEPTIONS: dict[str, str] = {
    "children/mail.py": (
        "the guardian's e-mail action (its failure): apart from children/actions.py, which queues the task that "
        "calls it, for the same reason as inquiries/mail.py"
    ),
    "inquiries/mail.py": (
        "the e-mail actions (acknowledgement, sales notice, failure): apart from actions.py, "
        "which queues the tasks that call them, so that the imports run one way"
    ),
    "incidents/mail.py": (
        "the incident notice's e-mail action (sent, or why it could not be, and the failure after every retry): "
        "apart from incidents/actions.py, which queues the task that calls it, for the same reason as "
        "inquiries/mail.py"
    ),
    "rights/fulfil.py": (
        "the execution of a completed rights request (rights-queue): its erasure runs after the completion's "
        "e-mail, from the mail task, so apart from rights/actions.py for the same reason as rights/mail.py"
    ),
    "staff/mail.py": (
        "the new-device alert's, the enrolment link's, the training notice's and the access review's e-mail "
        "actions (their failures): apart from staff/actions.py, which queues the tasks that call them, for the "
        "same reason as inquiries/mail.py"
    ),
    "rights/mail.py": (
        "the rights request's e-mail actions (code, receipt, failure), apart from rights/actions.py for the "
        "same reason as inquiries/mail.py"
    ),
    "accounts/mail.py": (
        "the account e-mails' action (sending and failure), apart from accounts/actions.py, which queues the task "
        "that calls it, for the same reason as inquiries/mail.py"
    ),
    "revisions/mail.py": (
        "the direct notices of a material policy change (made once per person, sent, their failure), apart "
        "from revisions/actions.py, which queues the task that calls them, for the same reason as inquiries/mail.py"
    ),
    "people/notices.py": (
        "the one cycle of the three direct notices (cessation, policy change, incident): the notice sent, in the "
        "transaction that records it; the three notices' mail modules declare it, for the same reason as "
        "inquiries/mail.py"
    ),
    "monitoring/mail.py": (
        "the alert's e-mail action (its sending and failure), apart from monitoring/actions.py, which queues the "
        "task that calls it, for the same reason as inquiries/mail.py"
    ),
}


def relative(path: Path) -> str:
    return path.relative_to(SOURCE).as_posix()


def allowed(path: Path) -> bool:
    parts = path.relative_to(SOURCE).parts
    return path.name in ALLOWED_MODULES or parts[0] in ALLOWED_PACKAGES


def uses_of_record_event(tree: ast.AST) -> list[int]:
    """Lines that import, call or pass ``record_event`` (a definition is not a use)."""

    def names(node: ast.AST) -> set[str]:
        if isinstance(node, ast.ImportFrom):
            return {alias.name for alias in node.names}
        if isinstance(node, ast.Name):
            return {node.id}
        if isinstance(node, ast.Attribute):
            return {node.attr}
        return set()

    return sorted({node.lineno for node in ast.walk(tree) if NAME in names(node)})


def writers() -> dict[str, list[int]]:
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = uses_of_record_event(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if lines:
            found[relative(path)] = lines
    return found


def kind(module: str) -> str:
    """What the module is, for the failure message."""
    name = module.rsplit("/", 1)[-1]
    if "/management/commands/" in module:
        return "a management command"
    for word in ("views", "tasks", "middleware"):
        if name.startswith(word):
            return f"a {word} module"
    return "a module that is no write or read path"


def test_only_write_paths_read_paths_the_gate_and_the_log_write_audit_events():
    offenders = {
        module: lines
        for module, lines in writers().items()
        if not allowed(SOURCE / module) and module not in EXCEPTIONS
    }
    assert not offenders, "record_event used outside a write path (call a named action instead): " + "; ".join(
        f"{module} ({kind(module)}) lines {lines}" for module, lines in offenders.items()
    )


def test_every_exception_is_still_needed():
    used = writers()
    stale = [module for module in EXCEPTIONS if module not in used or allowed(SOURCE / module)]
    assert not stale, f"no longer writes audit events or is allowed anyway: drop from EXCEPTIONS: {stale}"


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from piwarden.audit.log import EventType, record_event\n", "backoffice/views.py"),
        ("from piwarden.audit.log import record_event as audit\n", "site/middleware.py"),
        ("from piwarden.audit import log\nlog.record_event(log.EventType.KEYS_ROTATED)\n", "vault/tasks.py"),
        ("import piwarden.audit.log\npiwarden.audit.log.record_event(None)\n", "staff/management/commands/x.py"),
    ],
)
def test_the_scan_finds_every_way_of_reaching_record_event(source, module):
    """The scanner itself: imports, aliases and calls through the module are all found."""
    assert uses_of_record_event(ast.parse(source))
    assert not allowed(SOURCE / module)


def test_the_scan_reads_the_real_tree():
    """The rule would pass on an empty tree: make sure it read the modules that do write."""
    used = writers()
    assert "staff/actions.py" in used
    assert "vault/actions.py" in used
    assert not any(module.endswith("views.py") for module in used)


# -- entry points are durable ---------------------------------------------------------------------


def _request(user: User | None = None) -> Any:
    request = RequestFactory().post("/")
    request.session = SessionStore()
    request.user = user
    return request


ENTRY_POINTS: dict[str, Callable[[User, Path], object]] = {
    "create_staff": lambda _user, _tmp: create_staff(
        username="dana", email="", password="correct horse battery staple 42", role="sales"
    ),
    "set_console_language": lambda user, _tmp: set_console_language(user, "en"),
    "sign_in_staff": lambda user, _tmp: sign_in_staff(_request(), user),
    "record_failed_sign_in": lambda _user, _tmp: record_failed_sign_in(username="alice", failed_step="code"),
    "sign_out_staff": lambda user, _tmp: sign_out_staff(_request(user)),
    "erase_person": lambda _user, _tmp: erase_person(
        find_or_create_person(email="zhang.wei@example.com"), reason="Asked by phone on 2026-12-01"
    ),
    "prune_outbox": lambda _user, tmp: prune_outbox(tmp),
    "open_outbox_messages": lambda _user, tmp: open_outbox_messages([tmp / "x.eml.sealed"], action="show"),
    "sweep_retention": lambda _user, _tmp: sweep_retention(),
    # rights-execute
    "restrict_processing": lambda user, _tmp: restrict_processing(_someone(), by=user, reference="R-1"),
    "lift_restriction": lambda user, _tmp: lift_restriction(_someone(), by=user, reason="Asked by phone today"),
    "withdraw": lambda _user, _tmp: withdraw(_someone(), "respond_inquiry", channel="test", reference="R-1"),
    "correct_person_data": lambda user, _tmp: correct_person_data(
        _someone(), {"inquiries.Inquiry.name": "张伟"}, by=user, reference="R-1"
    ),
    "replay_erasure": lambda _user, _tmp: replay_erasure(
        ledger.Entry(1, uuid.uuid4(), uuid.uuid4(), timezone.now(), ledger.GENESIS, ledger.GENESIS)
    ),
    "record_replay": lambda _user, _tmp: record_replay(replayed=0, recorded=0, entries=0),
    # staff-authz
    "end_expired_session": lambda user, _tmp: end_expired_session(_request(user), signed_in_for=43200),
    "assign_inquiry": lambda user, _tmp: assign_inquiry(user, "ABCDEFGHJK", to=user),
    # retention (issue 10 §1)
    "sweep_batch": lambda _user, _tmp: retention_actions.sweep_batch(0, [], now=timezone.now(), run="r"),
    "erase_people_batch": lambda _user, _tmp: retention_actions.erase_people_batch([], reason="Site ceases", run="r"),
    "trust_clock": lambda _user, _tmp: retention_actions.trust_clock(timezone.now()),
    "confirm_clock": lambda _user, _tmp: retention_actions.confirm_clock(now=timezone.now(), reference=None),
    "place_hold": lambda user, _tmp: retention_actions.place_hold(
        category="consultation", reason="Court order 2026-88", ends_on=timezone.now().date(), by=user
    ),
    "lift_hold": lambda user, _tmp: retention_actions.lift_hold(1, reason="The court lifted it", by=user),
    "alert_clock_ahead": lambda _user, _tmp: retention_actions.alert_clock_ahead(
        now=timezone.now(), reference=timezone.now()
    ),
}


def _someone() -> Person:
    return find_or_create_person(email="zhang.wei@example.com")


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_an_entry_point_refuses_to_run_inside_another_transaction(name, alice, tmp_path):
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        ENTRY_POINTS[name](alice, tmp_path)
