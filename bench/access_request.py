"""One verified access request, from the verification to the archive being ready: its CPU (issue 7).

    .venv/bin/python bench/access_request.py [--rounds 30] [--warmup 5]
    .venv/bin/python bench/access_request.py --compare old=OTHER_CHECKOUT/src,new=src [--repeats 3]

Target of issue 7: ≤ 15 ms CPU for a typical person.  Each round makes a new typical person
through the real write paths (not timed): a consultation request (``submit_inquiry``: person, data
key, consent, encrypted request, the two e-mails sent by the worker into the sealed outbox), then
an access request with the same address (``submit_request``; the code e-mail sent).  Then, timed
in process (``time.process_time``):

* ``verify``: the code typed back (``verify_request``: received, due date, receipt e-mail queued);
* ``complete``: a privacy officer completes it (``complete_request``: the completion, its e-mail
  and the archive's build queued);
* ``archive``: the worker runs the build task (``build_archive_task``: the gate, every exporter,
  the sealed zip and page, progress on the row, ready), from the task's start to its end;
* ``mails``: the worker's other tasks of the round (the receipt and the completion e-mails) and
  its own work (claiming and finishing each task row), reported beside the target, not in it.

The figure of the target is verify + complete + archive, per round; the median of ``--rounds``
rounds after ``--warmup`` (the first build loads templates, the declaration, the catalogues).

``--compare NAME=SRC,...`` runs this script in child processes with ``PYTHONPATH=SRC`` (another
checkout's code, e.g. main's, against this one's), one after the other and ``--repeats`` times
over (A B A B ...), each with a fresh data directory (SQLite), and prints each one's medians and
the ratios within the run.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchenv import configure

HERE = Path(__file__).resolve()
PARTS = ("verify", "complete", "archive", "mails")
TARGET_MS = 15.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compare", help="NAME=SRC,NAME=SRC: run each code in child processes, interleaved")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a child's report
    args = parser.parse_args()
    if args.compare:
        compare(args.compare, args.rounds, args.warmup, args.repeats)
        return
    with tempfile.TemporaryDirectory(prefix="piwarden-bench-access-") as tmp:
        configure(Path(tmp))
        rounds = run(args.rounds, args.warmup)
    if args.json:
        print(json.dumps(rounds))
    else:
        show("this code", [rounds])


def run(rounds: int, warmup: int) -> dict[str, Any]:
    import django  # noqa: PLC0415  # only after configure()
    from django.core.management import call_command  # noqa: PLC0415

    django.setup()
    for noisy in ("django.tasks", "django_tasks_db"):  # a line per task
        logging.getLogger(noisy).setLevel(logging.WARNING)
    call_command("migrate", interactive=False, verbosity=0)
    call_command("keys", "init", stdout=io.StringIO())
    from django.db import connection  # noqa: PLC0415

    import piwarden  # noqa: PLC0415

    officer_id = officer()
    load = os.getloadavg()[0]
    measured = [one_round(officer_id) for _ in range(warmup + rounds)][warmup:]
    return {
        "code": str(Path(piwarden.__file__).parent),
        "backend": connection.vendor,
        "load_before": load,
        "load_after": os.getloadavg()[0],
        "rounds": measured,
    }


def officer() -> int:
    from django.contrib.auth.models import User  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415

    with tempfile.NamedTemporaryFile("w", suffix=".pw") as secret:
        secret.write(f"bench-{uuid.uuid4().hex}-Pw!")
        secret.flush()
        password = Path(secret.name)
        out = io.StringIO()
        call_command("createstaff", "bench-officer", role="privacy_officer", password_file=password, stdout=out)
    return User.objects.get(username="bench-officer").pk


def signed_in(user_id: int) -> Any:
    """The officer as a request of the back office has them: loaded afresh, past the second factor
    (django-otp's middleware marks the user so; the role is then read once per request)."""
    from django.contrib.auth.models import User  # noqa: PLC0415

    user = User.objects.get(pk=user_id)
    user.is_verified = lambda: True  # type: ignore[attr-defined]
    return user


def one_round(officer_id: int) -> dict[str, float]:
    """A new typical person and their access request, then the timed steps (CPU seconds each)."""
    from piwarden.inquiries.actions import Submission, submit_inquiry  # noqa: PLC0415
    from piwarden.rights.actions import RequestInput, complete_request, submit_request, verify_request  # noqa: PLC0415
    from piwarden.rights.models import ActingAs, Archive, CodePurpose, RequestKind, VerificationCode  # noqa: PLC0415

    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    values = {
        "name": "张伟",
        "phone": "+8613800138000",
        "email": email,
        "company": "示例科技有限公司",
        "industry": "finance",
        "position": "信息安全经理",
        "region": "CN",
        "product": "data",
    }
    submit_inquiry(Submission(values, uuid.uuid4(), "zh-hans", "我同意为答复咨询处理以上信息。"))
    drain()  # the acknowledgement and the sales notification, into the sealed outbox
    given = RequestInput(kind=RequestKind.ACCESS, email=email, details="", acting_as=ActingAs.SELF, language="zh-hans")
    request = submit_request(given)
    code = VerificationCode.objects.get(request=request, purpose=CodePurpose.VERIFY).sealed_code
    drain()  # the code's e-mail
    assert code is not None
    staff = signed_in(officer_id)

    started = time.process_time()
    assert verify_request(request.reference, code).ok
    verified = time.process_time()
    complete_request(staff, request.reference, result="您要求的个人信息副本已准备好，请通过下面的链接下载。")
    completed = time.process_time()
    tasks = drain()
    finished = time.process_time()

    archive = Archive.objects.get(reference=request.reference)
    assert archive.status == "ready", archive.status
    build = tasks.get("piwarden.rights.archive_tasks.build_archive_task", 0.0)
    return {
        "verify": verified - started,
        "complete": completed - verified,
        "archive": build,
        "mails": finished - completed - build,
        "records": archive.records_done,
    }


def drain() -> dict[str, float]:
    """Run every queued task as the worker does (``--batch``); the CPU of each task, by its path."""
    from django.tasks.signals import task_finished, task_started  # noqa: PLC0415

    from piwarden.site.management.commands.worker import ResilientWorker  # noqa: PLC0415

    spent: dict[str, float] = {}
    began: dict[str, float] = {}

    def on_start(sender: Any, task_result: Any, **kwargs: Any) -> None:
        began[task_result.id] = time.process_time()

    def on_finish(sender: Any, task_result: Any, **kwargs: Any) -> None:
        path = task_result.task.module_path
        spent[path] = spent.get(path, 0.0) + time.process_time() - began.pop(task_result.id)
        assert task_result.status == "SUCCESSFUL", (path, task_result.status)

    task_started.connect(on_start)
    task_finished.connect(on_finish)
    try:
        worker = ResilientWorker(
            recover_from=[],
            queue_names=["default"],
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id="bench",
            excluded_queue_names=[],
        )
        worker.run()
    finally:
        task_started.disconnect(on_start)
        task_finished.disconnect(on_finish)
    return spent


def compare(spec: str, rounds: int, warmup: int, repeats: int) -> None:
    trees = dict(item.split("=", 1) for item in spec.split(","))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for _ in range(repeats):
        for name, src in trees.items():
            env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
            argv = [sys.executable, str(HERE), "--json", "--rounds", str(rounds), "--warmup", str(warmup)]
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"{name} failed:\n{done.stderr}")
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    medians = {name: show(name, runs) for name, runs in results.items()}
    names = list(trees)
    for other in names[1:]:
        ratio = medians[other] / medians[names[0]]
        print(f"{other} / {names[0]}: {ratio:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def target(measured: dict[str, float]) -> float:
    """The figure of issue 7's target: from the verification to the archive ready (CPU seconds)."""
    return measured["verify"] + measured["complete"] + measured["archive"]


def show(name: str, runs: list[dict[str, Any]]) -> float:
    """Print the medians over every round of ``runs``; returns the target figure's median (ms)."""
    rounds = [r for run in runs for r in run["rounds"]]
    ms = {part: statistics.median(r[part] for r in rounds) * 1000 for part in PARTS}
    total = statistics.median(target(r) * 1000 for r in rounds)
    per_run = [statistics.median(target(r) * 1000 for r in run["rounds"]) for run in runs]
    loads = ", ".join(f"{run['load_before']:.1f}→{run['load_after']:.1f}" for run in runs)
    print(
        f"{name} ({runs[0]['code']}, {runs[0]['backend']}; {len(rounds)} rounds, {rounds[0]['records']:.0f} records): "
        f"verification → archive ready {total:.1f} ms CPU (median; {total / TARGET_MS:.2f}× the {TARGET_MS:.0f} ms "
        f"target) = verify {ms['verify']:.1f} + complete {ms['complete']:.1f} + archive {ms['archive']:.1f}; "
        f"e-mails and worker {ms['mails']:.1f} ms besides; per process {', '.join(f'{m:.1f}' for m in per_run)}; "
        f"load {loads}"
    )
    return total


if __name__ == "__main__":
    main()
