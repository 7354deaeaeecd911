"""``piwarden audit seal`` and ``piwarden audit verify``, run as an operator runs them.

Two processes append at once (each its own connection and transactions), the command seals
them into one chain, and ``verify`` exits 0; four append while the worker's sealer runs, and the
log is one chain holding every event.  The attacker drops the append-only triggers first (the
database refuses the tampering otherwise): a rewritten sealed event, a rewritten pending one, a
deleted one, an inserted one, two reordered, the log cut short and the log rewritten with its
hashes recomputed each make ``verify`` exit 1 naming the first bad event and the missing
triggers; with the log intact and the triggers gone it exits 2.  Off a terminal it prints no progress bar; on one
(a pseudo-terminal) it does, on stderr, unless ``--quiet``.
"""

from __future__ import annotations

import io
import os
import pty
import subprocess
import textwrap
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from piwarden.audit import appendonly
from piwarden.audit.chain import seal, seal_every, verify
from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditEvent
from tests.audit.conftest import drop_triggers
from tests.audit.test_tampering_property import sealed_log, tamper  # noqa: F401  # sealed_log: a fixture
from tests.commands import PIWARDEN, command_env, piwarden

pytestmark = pytest.mark.django_db(transaction=True)

APPEND = textwrap.dedent(
    """
    import sys
    import django
    django.setup()
    from django.db import connection, transaction
    from piwarden.audit.log import EventType, batched, record_event
    who, rounds = sys.argv[1], int(sys.argv[2])
    for i in range(rounds):
        with transaction.atomic(), batched():
            for j in range(4):
                record_event(EventType.STAFF_SIGN_IN_FAILED, purpose="security", extra={"who": who, "n": i * 5 + j})
        with transaction.atomic():  # and one appended alone (not batched)
            record_event(EventType.STAFF_SIGN_IN_FAILED, purpose="security", extra={"who": who, "n": i * 5 + 4})
    """
)


def append_in_processes(*whos: str, rounds: int = 20) -> None:
    """Each of ``whos`` a process appending 5 events ``rounds`` times (4 in one statement, 1 alone)."""
    env = command_env(DJANGO_SETTINGS_MODULE="piwarden.settings")
    python = os.path.join(os.path.dirname(PIWARDEN), "python")
    processes = [
        subprocess.Popen([python, "-c", APPEND, who, str(rounds)], env=env, stderr=subprocess.PIPE, text=True)  # noqa: S603  # fixed argv
        for who in whos
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err


def test_two_processes_append_and_the_command_seals_them_into_one_chain() -> None:
    append_in_processes("a", "b")
    assert AuditEvent.objects.count() == 200
    assert AuditEvent.objects.filter(seq=None).count() == 200

    verified = piwarden("audit", "verify")  # pending events are checked too
    assert verified.returncode == 0, verified.stderr
    assert "200 event(s) verified" in verified.stdout
    assert verified.stderr == ""  # no progress bar off a terminal

    sealed = piwarden("audit", "seal")
    assert sealed.returncode == 0, sealed.stderr
    assert "200 event(s) sealed" in sealed.stdout
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 201))
    assert set(AuditEvent.objects.values_list("extra__who", flat=True)) == {"a", "b"}
    assert piwarden("audit", "verify").returncode == 0

    drop_triggers()
    AuditEvent.objects.filter(seq=120).update(reason="nothing to see")
    broken = piwarden("audit", "verify")
    assert broken.returncode == 1
    event_id = AuditEvent.objects.get(seq=120).pk
    assert f"seq 120 (id {event_id})" in broken.stderr
    assert "rewritten" in broken.stderr
    assert "append-only triggers are missing" in broken.stderr


@pytest.mark.duty("SEC-02")
def test_four_processes_append_while_the_sealer_runs_and_the_log_is_one_verified_chain() -> None:
    stop = threading.Event()
    sealer = threading.Thread(target=seal_every, args=(stop, 0.02))  # the worker's sealer, its own connection
    sealer.start()
    try:
        append_in_processes("a", "b", "c", "d", rounds=20)
    finally:
        stop.set()
        sealer.join(timeout=60)
    assert not sealer.is_alive()
    seal()  # what was committed after the sealer's last pass

    assert AuditEvent.objects.count() == 400
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, 401))
    for who in "abcd":  # each process's events in the chain in the order it appended them
        order = list(AuditEvent.objects.filter(extra__who=who).order_by("seq").values_list("extra__n", flat=True))
        assert order == list(range(100)), who
    assert verify() is None
    verified = piwarden("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "400 event(s) verified" in verified.stdout


@pytest.mark.duty("SEC-02")
def test_a_rewritten_pending_event_is_named_by_its_id() -> None:
    with transaction.atomic():
        for _ in range(3):
            record_event(EventType.AUDIT_VIEWED, extra={"page": "1"})
    target = AuditEvent.objects.order_by("id")[1]
    drop_triggers()
    AuditEvent.objects.filter(pk=target.pk).update(extra={"page": "2"})
    with pytest.raises(CommandError, match=f"unsealed id {target.pk}: its digest does not match") as refused:
        call_command("audit", "verify", "--quiet")
    assert refused.value.returncode == 1


@pytest.mark.duty("SEC-02")
def test_a_deleted_sealed_event_is_named_by_the_one_after_it() -> None:
    with transaction.atomic():
        for _ in range(4):
            record_event(EventType.AUDIT_VIEWED, extra={"page": "1"})
    call_command("audit", "seal", stdout=io.StringIO())
    drop_triggers()
    AuditEvent.objects.filter(seq=2).delete()
    follower = AuditEvent.objects.get(seq=3)
    with pytest.raises(CommandError, match=rf"seq 3 \(id {follower.pk}\): seq 2 is missing") as refused:
        call_command("audit", "verify", "--quiet")
    assert refused.value.returncode == 1
    assert "append-only triggers are missing, disabled or altered (audit_" in str(refused.value)


@pytest.mark.duty("SEC-02")
@pytest.mark.django_db  # sealed_log is built in the test's transaction
@pytest.mark.usefixtures("sealed_log")  # and exported to PIWARDEN_AUDIT_CHECKPOINTS, which verify reads
@pytest.mark.parametrize(
    ("kind", "seq", "other", "named"),
    [
        ("flip", 9, 0, "seq 9 "),  # a byte of an event's reason
        ("delete", 9, 0, "seq 10 "),  # the one after the gap
        ("insert", 9, 0, "seq 10 "),  # the forged seq 9 follows its predecessor; the old seq 9, now 10, does not
        ("swap", 9, 20, "seq 9 "),  # reordered
        ("cut", 30, 0, "seq 29 "),  # truncated, the head moved back: against the export file
        ("rewrite", 9, 0, "seq 8 "),  # every hash after it recomputed: the export's run from seq 8
    ],
)
def test_with_the_triggers_dropped_every_kind_of_tampering_exits_1_naming_the_first_bad_event(
    kind: str, seq: int, other: int, named: str
) -> None:
    drop_triggers()
    tamper(kind, seq, other, "reason", 3, 1)
    with pytest.raises(CommandError) as refused:
        call_command("audit", "verify", "--quiet")
    assert refused.value.returncode == 1
    assert f"audit event {named}" in str(refused.value)
    assert "the audit log was tampered with; and its append-only triggers are missing" in str(refused.value)


@pytest.mark.duty("SEC-02")
def test_an_intact_log_without_its_triggers_verifies_with_status_2_until_they_are_restored() -> None:
    with transaction.atomic():
        record_event(EventType.AUDIT_VIEWED, extra={"page": "1"})
    call_command("audit", "seal", stdout=io.StringIO())
    drop_triggers()
    unguarded = piwarden("audit", "verify")
    assert unguarded.returncode == 2, unguarded.stderr
    assert "1 event(s) verified" in unguarded.stdout
    assert "the log verifies, but its append-only triggers are missing" in unguarded.stderr
    assert "piwarden audit restore-triggers" in unguarded.stderr

    restored = piwarden("audit", "restore-triggers")
    assert restored.returncode == 0, restored.stderr
    assert appendonly.missing(connection) == []
    event = AuditEvent.objects.get(event_type=EventType.AUDIT_TRIGGERS_RESTORED)  # a change, recorded
    assert event.extra["missing"]
    assert piwarden("audit", "verify").returncode == 0


def run_on_a_terminal(*argv: str) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as its stderr; return its status and what the terminal got."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(  # noqa: S603  # our own command, fixed argv
        [PIWARDEN, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal, env=command_env()
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the command closed the terminal's last end
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    return process.wait(timeout=60), shown.decode(errors="replace")


def test_on_a_terminal_verify_shows_a_progress_bar_unless_quiet() -> None:
    with transaction.atomic():
        for _ in range(5):
            record_event(EventType.AUDIT_VIEWED, extra={"page": "1"})
    status, shown = run_on_a_terminal("audit", "verify")
    assert status == 0
    assert "100%" in shown
    assert "5/5 events" in shown
    status, shown = run_on_a_terminal("audit", "verify", "--quiet")
    assert status == 0
    assert shown == ""
