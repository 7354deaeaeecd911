"""Rights requests on a demo database of N people and M activity rows (issue 7's benchmark).

    .venv/bin/python bench/rights.py [--persons 1000000] [--activity 10000000]      (SQLite)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/EMPTY_DB .venv/bin/python bench/rights.py …
    make bench-rights                                                                (SQLite, full size)

The database is filled by ``piwarden demo`` (timed), in ``--data-dir`` (default: a new
``bench/results/rights-<UTC time>/data``); ``--data-dir`` of an earlier run measures again
without filling (the size is read from its ``demo.json``).  Then, each in a process of its own
started after the fill, as a worker or a web process would run it:

* **locate**: a person's records from their e-mail address: the blind index, the ``Person``, and
  the ids of their rows in every table that holds them (and of the background tasks of their
  requests, found as the ``queued_tasks`` exporter finds them); p50 and p99 wall time;
* **archive**: ``build_archive`` of a typical demo person (wall, CPU, peak memory);
* **access request**: one verified access request end to end, in CPU time: ``verify_request``
  (the code as the e-mail carries it), ``complete_request`` by the privacy officer, and the
  ``build_archive_task`` the completion queued, claimed and run as the worker runs it.  The
  submission before it is not counted; the e-mails it queues are not sent (no mail worker);
* **two workers**: the same for many requests, by two processes at once; completed per second;
* **erasure**: ``erase_person`` of a demo person (every category's eraser, the crypto-shredding,
  the erasure ledger), CPU time;
* **peak memory** of a process building the archive of a person with ``--heavy`` more rows
  (bench/archive.py's person: half consultation requests, half consent records).

Targets (issue 7): locate p50 ≤ 20 ms, p99 ≤ 100 ms; archive ≤ 1 s; access request ≤ 15 ms CPU;
≥ 50 completed per second with two workers; erasure ≤ 20 ms CPU; archive peak < 150 MB.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchenv import configure

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
PIWARDEN = Path(sys.executable).parent / "piwarden"
RESULT = "我们已为您准备了您的个人信息副本。请在五天内下载。"  # the privacy officer's answer
SEED = 1  # the demo's seed: its people's e-mail addresses are known from it


def setup() -> None:
    import django  # noqa: PLC0415  # only after configure()

    django.setup()
    from piwarden.vault.keys import get_provider  # noqa: PLC0415

    get_provider().kek()  # as a worker starts: the key-encryption keys loaded before any work


# --- the measurements, each run in a child process (--child NAME) --------------------------


def numbers(count: int, persons: int, salt: int) -> list[int]:
    """``count`` distinct demo people, the same for a salt (each measurement its own people; ``--salt``
    picks others, for a run on a database measured before, whose erased people cannot be erased again)."""
    salt += int(os.environ.get("BENCH_RIGHTS_SALT", "0")) * 1000
    return random.Random(salt).sample(range(persons), count)  # picking people, not secrets


def person_of(number: int) -> Any:
    from piwarden.demo.fill import person_values  # noqa: PLC0415
    from piwarden.people.models import Person  # noqa: PLC0415
    from piwarden.vault import blind  # noqa: PLC0415

    return Person.objects.get(email_index=blind.email_index(person_values(SEED, number)["email"]))


def locate(number: int) -> tuple[float, float, int]:
    """A person's records from their e-mail: the blind index, the Person, the ids of their rows in
    every table with a link to them; then the background tasks of their requests, found as the
    ``queued_tasks`` exporter finds them (by the request's id in the task's arguments).

    Returns (seconds for the person and their rows, seconds for the tasks, rows found)."""
    from piwarden.audit.models import AuditEvent  # noqa: PLC0415
    from piwarden.consent.models import ConsentRecord  # noqa: PLC0415
    from piwarden.inquiries.models import Inquiry  # noqa: PLC0415
    from piwarden.inquiries.personal_data import _tasks_naming  # noqa: PLC0415  # the exporter's own query
    from piwarden.rights.models import Archive, RequestStep, RightsRequest, VerificationCode  # noqa: PLC0415

    started = time.perf_counter()
    person = person_of(number)
    found = 0
    requests: list[str] = []
    for model in (Inquiry, ConsentRecord, AuditEvent, RightsRequest, RequestStep, VerificationCode, Archive):
        ids = list(model.objects.filter(person=person).values_list("pk", flat=True))
        found += len(ids)
        if model is Inquiry:
            requests = [str(pk) for pk in ids]
    rows = time.perf_counter()
    tasks = _tasks_naming([str(pk) for pk in requests])
    found += len(list(tasks.values_list("pk", flat=True)))
    return rows - started, time.perf_counter() - rows, found


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * len(ordered)))]


def child_locate(persons: int, samples: int) -> dict[str, Any]:
    setup()
    for number in numbers(20, persons, 11):  # warm-up
        locate(number)
    direct, tasks, totals, rows, cpu = [], [], [], [], []
    for number in numbers(samples, persons, 12):
        started = time.process_time()
        person_rows, task_rows, found = locate(number)
        cpu.append(time.process_time() - started)
        direct.append(person_rows)
        tasks.append(task_rows)
        totals.append(person_rows + task_rows)
        rows.append(found)
    (p50, p99), (rows_p50, rows_p99), (tasks_p50, tasks_p99) = map(percentiles, (totals, direct, tasks))
    return {
        "p50": p50,
        "p99": p99,
        "rows_p50": rows_p50,
        "rows_p99": rows_p99,
        "tasks_p50": tasks_p50,
        "tasks_p99": tasks_p99,
        "max": max(totals),
        "cpu_p50": statistics.median(cpu),  # this process's CPU (on SQLite the engine's too; not PostgreSQL's)
        "rows_median": statistics.median(rows),
        "samples": samples,
    }


def high_water_mark() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child_archive(number: int) -> dict[str, Any]:
    setup()
    import uuid  # noqa: PLC0415

    from piwarden.rights.archive import build_archive  # noqa: PLC0415

    person = person_of(number)
    before = high_water_mark()
    wall, cpu = time.perf_counter(), time.process_time()
    archive = build_archive(person, reference=f"BENCH-{uuid.uuid4().hex[:8]}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "records": archive.records_done, "hwm_before": before, "hwm": high_water_mark()}


class AccessRequests:
    """Verify, complete and build the archive of submitted access requests, as the site would."""

    def __init__(self) -> None:
        from django.contrib.auth.models import User  # noqa: PLC0415
        from django_tasks_db.management.commands.db_worker import Worker  # noqa: PLC0415

        self.officer_id = User.objects.get(username="demo-privacy-officer").pk
        self.worker = Worker(
            queue_names=["default"],
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=f"bench-{os.getpid()}",
            excluded_queue_names=[],
        )

    def signed_in_officer(self) -> Any:
        """The privacy officer as a request of the staff console sees them: loaded from the session's
        user id, their second factor verified (what django_otp's middleware sets after the sign-in)."""
        from django.contrib.auth.models import User  # noqa: PLC0415
        from django_otp.middleware import is_verified  # noqa: PLC0415

        from piwarden.staff.models import Authenticator  # noqa: PLC0415

        user = User.objects.get(pk=self.officer_id)
        user.otp_device = Authenticator.objects.get(user=user)  # type: ignore[attr-defined]
        user.is_verified = functools.partial(is_verified, user)  # type: ignore[attr-defined]
        return user

    def answer(self, reference: str, code: str) -> dict[str, float]:
        from django.tasks import TaskResultStatus  # noqa: PLC0415
        from django_tasks_db.models import DBTaskResult  # noqa: PLC0415
        from django_tasks_db.utils import exclusive_transaction  # noqa: PLC0415

        from piwarden.rights.actions import complete_request, verify_request  # noqa: PLC0415
        from piwarden.rights.archive_tasks import build_archive_task  # noqa: PLC0415

        marks = [time.process_time()]
        if not verify_request(reference, code).ok:
            raise SystemExit(f"the code of {reference} was refused")
        marks.append(time.process_time())
        complete_request(self.signed_in_officer(), reference, result=RESULT)
        marks.append(time.process_time())
        with exclusive_transaction():  # claimed as the worker claims a task
            task = (
                DBTaskResult.objects.ready()
                .filter(task_path=build_archive_task.module_path, args_kwargs__args__1=reference)
                .get_locked()
            )
            if task is None:
                raise SystemExit(f"no archive task queued for {reference}")
            task.claim(self.worker.worker_id)
        self.worker.run_task(task)
        task.refresh_from_db(fields=["status", "return_value"])
        if task.status != TaskResultStatus.SUCCESSFUL or task.return_value == "refused":
            raise SystemExit(f"the archive of {reference} was not built: {task.status} {task.return_value}")
        marks.append(time.process_time())
        return {"verify": marks[1] - marks[0], "complete": marks[2] - marks[1], "archive": marks[3] - marks[2]}


def submit_requests(persons: int, count: int, salt: int) -> list[tuple[str, str]]:
    """Access requests of ``count`` demo people, submitted and awaiting verification: (reference, code)."""
    from piwarden.demo.fill import person_values  # noqa: PLC0415
    from piwarden.rights.actions import RequestInput, submit_request  # noqa: PLC0415
    from piwarden.rights.models import ActingAs, CodePurpose, RequestKind, VerificationCode  # noqa: PLC0415

    submitted = []
    for number in numbers(count, persons, salt):
        values = person_values(SEED, number)
        given = RequestInput(
            kind=RequestKind.ACCESS,
            email=values["email"],
            details="",
            acting_as=ActingAs.SELF,
            language=values["language"],
        )
        request = submit_request(given)
        code = VerificationCode.objects.get(request=request, purpose=CodePurpose.VERIFY)
        assert code.sealed_code is not None
        submitted.append((request.reference, code.sealed_code))
    return submitted


def child_access(persons: int, count: int) -> dict[str, Any]:
    setup()
    requests = submit_requests(persons, count + 3, 21)
    answering = AccessRequests()
    for reference, code in requests[:3]:  # warm-up: first templates, first imports
        answering.answer(reference, code)
    parts = [answering.answer(reference, code) for reference, code in requests[3:]]
    totals = [sum(p.values()) for p in parts]
    return {
        "cpu": statistics.median(totals),
        "cpu_min": min(totals),
        "cpu_max": max(totals),
        **{name: statistics.median(p[name] for p in parts) for name in ("verify", "complete", "archive")},
        "count": count,
    }


def child_worker(requests_file: str, start_at: float) -> dict[str, Any]:
    setup()
    requests = json.loads(Path(requests_file).read_text())
    answering = AccessRequests()
    time.sleep(max(0.0, start_at - time.time()))
    started, cpu = time.time(), time.process_time()
    for reference, code in requests:
        answering.answer(reference, code)
    return {"started": started, "ended": time.time(), "cpu": time.process_time() - cpu, "count": len(requests)}


def child_erase(persons: int, count: int) -> dict[str, Any]:
    setup()
    from piwarden.people.actions import erase_person  # noqa: PLC0415

    people = [person_of(number) for number in numbers(count + 2, persons, 31)]
    cpu_times, wall_times = [], []
    for n, person in enumerate(people):
        wall, cpu = time.perf_counter(), time.process_time()
        assert erase_person(person, reason="Benchmark: erasure asked by the person in writing on 4 December")
        if n >= 2:  # the first two warm up
            cpu_times.append(time.process_time() - cpu)
            wall_times.append(time.perf_counter() - wall)
    return {"cpu": statistics.median(cpu_times), "wall": statistics.median(wall_times), "count": count}


def child_heavy_person(records: int) -> dict[str, Any]:
    setup()
    sys.path.insert(0, str(HERE.parent))
    import archive as archive_bench  # noqa: PLC0415  # bench/archive.py: its heavy person

    started = time.perf_counter()
    person_id = archive_bench.submitted("heavy")
    archive_bench.fill(person_id, records)
    return {"person": person_id, "seconds": time.perf_counter() - started}


def child_archive_of(person_id: str) -> dict[str, Any]:
    setup()
    import uuid  # noqa: PLC0415

    from piwarden.people.models import Person  # noqa: PLC0415
    from piwarden.rights.archive import build_archive  # noqa: PLC0415

    person = Person.objects.get(pk=person_id)
    before = high_water_mark()
    wall, cpu = time.perf_counter(), time.process_time()
    archive = build_archive(person, reference=f"BENCH-{uuid.uuid4().hex[:8]}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "records": archive.records_done, "hwm_before": before, "hwm": high_water_mark()}


CHILDREN = {
    "locate": lambda a: child_locate(a.persons, a.samples),
    "archive": lambda a: child_archive(a.number),
    "access": lambda a: child_access(a.persons, a.requests),
    "worker": lambda a: child_worker(a.requests_file, a.start_at),
    "erase": lambda a: child_erase(a.persons, a.erasures),
    "heavy": lambda a: child_heavy_person(a.heavy),
    "archive_of": lambda a: child_archive_of(a.person_id),
}


# --- the parent ---------------------------------------------------------------------------


def run_child(name: str, *argv: str) -> dict[str, Any]:
    result = subprocess.run(  # our own script, fixed argv
        [sys.executable, str(HERE), "--child", name, *argv], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stdout}\n{result.stderr}")
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def start_child(name: str, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # our own script, fixed argv
        [sys.executable, str(HERE), "--child", name, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def fill(data_dir: Path, persons: int, activity: int, workers: int) -> dict[str, Any]:
    marker = data_dir / "demo.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # A reused database gets the code's newer migrations too (an index, say) before it is measured.
    for argv in (["migrate", "--verbosity", "0"], ["keys", "init"]):
        subprocess.run([str(PIWARDEN), *argv], check=True, env=env, stdout=subprocess.DEVNULL)  # fixed argv
    if marker.exists():
        filled: dict[str, Any] = json.loads(marker.read_text())
        print(f"reusing {data_dir}: {filled['persons']:,} people, {filled['activity']:,} activity rows")
        return filled
    load = os.getloadavg()[0]
    started = time.perf_counter()
    command = [str(PIWARDEN), "demo", "--persons", str(persons), "--activity", str(activity), "--seed", str(SEED)]
    command += ["--workers", str(workers)]
    print("$ PIWARDEN_DEMO=on piwarden " + " ".join(command[1:]))
    result = subprocess.run(command, check=True, env=env, stdout=subprocess.PIPE, text=True)  # fixed argv
    seconds = time.perf_counter() - started
    print(result.stdout.strip())
    filled = {
        "persons": persons,
        "activity": activity,
        "fill_seconds": seconds,
        "load_before_fill": load,
        "load_after_fill": os.getloadavg()[0],
        "said": result.stdout.strip(),
        "database": database_size(data_dir),
    }
    marker.write_text(json.dumps(filled))
    return filled


def database_size(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("*.sqlite3*"))


def throughput(persons: int, per_worker: int, results: Path) -> dict[str, Any]:
    setup_parent()
    requests = submit_requests(persons, 2 * per_worker, 41)
    files = []
    for n in range(2):
        path = results / f"requests-{n}.json"
        path.write_text(json.dumps(requests[n::2]))
        files.append(path)
    from django.db import connections  # noqa: PLC0415

    connections.close_all()
    start_at = time.time() + 8.0  # both processes set up (Django, keys) before the clock starts
    procs = [start_child("worker", "--requests-file", str(path), "--start-at", str(start_at)) for path in files]
    reports = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"a worker failed:\n{out}\n{err}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    started = min(r["started"] for r in reports)
    ended = max(r["ended"] for r in reports)
    done = sum(r["count"] for r in reports)
    return {
        "per_second": done / (ended - started),
        "seconds": ended - started,
        "count": done,
        "cpu_per_request": sum(r["cpu"] for r in reports) / done,
    }


_parent_ready = False


def setup_parent() -> None:
    global _parent_ready  # noqa: PLW0603  # Django is set up once in the parent
    if not _parent_ready:
        setup()
        _parent_ready = True


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--activity", type=int, help="activity rows (default: 10 per person)")
    parser.add_argument("--data-dir", type=Path, help="the demo database's data directory (reused if filled)")
    parser.add_argument("--workers", type=int, default=2, help="processes of piwarden demo")
    parser.add_argument("--samples", type=int, default=1000, help="people located")
    parser.add_argument("--archives", type=int, default=5, help="typical archives built")
    parser.add_argument("--requests", type=int, default=30, help="access requests timed one by one")
    parser.add_argument("--per-worker", type=int, default=150, help="access requests per worker (two workers)")
    parser.add_argument("--erasures", type=int, default=20)
    parser.add_argument("--heavy", type=int, default=100_000, help="rows of the heavy person (0: skip)")
    parser.add_argument("--salt", type=int, default=0, help="other people than a run with another salt")
    for hidden in ("--child", "--requests-file", "--person-id"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--number", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return
    os.environ["BENCH_RIGHTS_SALT"] = str(args.salt)
    activity = args.activity if args.activity is not None else 10 * args.persons
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    results = ROOT / "bench" / "results" / f"rights-{stamp}"
    results.mkdir(parents=True, exist_ok=True)
    data_dir = (args.data_dir or results / "data").resolve()
    configure(data_dir, PIWARDEN_DEMO="on")
    lines = [f"# bench/rights.py, run {stamp}", ""]

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    say(f"load average at start: {os.getloadavg()[0]:.2f}; backend: {os.environ.get('DATABASE_URL', 'SQLite')}")
    filled = fill(data_dir, args.persons, activity, args.workers)
    persons = filled["persons"]
    say(
        f"demo database: {persons:,} people, {filled['activity']:,} activity rows; filled in "
        f"{filled['fill_seconds']:,.0f} s (load {filled['load_before_fill']:.1f} → {filled['load_after_fill']:.1f}); "
        f"SQLite files {filled['database'] / 1e9:.2f} GB"
    )

    found = run_child("locate", "--persons", str(persons), "--samples", str(args.samples))
    ms = {key: value * 1000 for key, value in found.items() if key not in ("samples", "rows_median")}
    say(
        f"locate: p50 {ms['p50']:.2f} ms, p99 {ms['p99']:.2f} ms, max {ms['max']:.1f} ms, "
        f"CPU p50 {ms['cpu_p50']:.2f} ms ({found['samples']} people, "
        f"median {found['rows_median']:.0f} rows each) — target p50 ≤ 20, p99 ≤ 100; of which the person and their "
        f"rows p50 {ms['rows_p50']:.2f} / p99 {ms['rows_p99']:.2f} ms, their requests' tasks "
        f"p50 {ms['tasks_p50']:.2f} / p99 {ms['tasks_p99']:.2f} ms"
    )
    builds = [run_child("archive", "--number", str(n)) for n in numbers(args.archives, persons, 51)]
    wall, cpu = (statistics.median(b[what] for b in builds) * 1000 for what in ("wall", "cpu"))
    records, peak = statistics.median(b["records"] for b in builds), max(b["hwm"] for b in builds) / 1024
    say(
        f"archive of a typical person: wall {wall:.0f} ms, CPU {cpu:.0f} ms (median of {len(builds)}; "
        f"{records:.0f} records; peak {peak:.0f} MB) — target ≤ 1 s"
    )
    access = run_child("access", "--persons", str(persons), "--requests", str(args.requests))
    say(
        f"one access request, verify → complete → archive task: CPU {access['cpu'] * 1000:.1f} ms median "
        f"({access['cpu_min'] * 1000:.1f}–{access['cpu_max'] * 1000:.1f}; verify {access['verify'] * 1000:.1f}, "
        f"complete {access['complete'] * 1000:.1f}, archive task {access['archive'] * 1000:.1f}; "
        f"{access['count']} requests) — target ≤ 15 ms"
    )
    erased = run_child("erase", "--persons", str(persons), "--erasures", str(args.erasures))
    say(
        f"one erasure: CPU {erased['cpu'] * 1000:.1f} ms, wall {erased['wall'] * 1000:.1f} ms "
        f"(median of {erased['count']}) — target ≤ 20 ms CPU"
    )
    rate = throughput(persons, args.per_worker, results)
    say(
        f"two workers: {rate['per_second']:.1f} access requests completed per second ({rate['count']} in "
        f"{rate['seconds']:.1f} s; {rate['cpu_per_request'] * 1000:.1f} ms CPU each, so "
        f"{2 / rate['cpu_per_request']:.0f}/s if each process had a core of its own) — target ≥ 50/s"
    )
    if args.heavy:
        heavy = run_child("heavy", "--heavy", str(args.heavy))
        built = run_child("archive_of", "--person-id", heavy["person"])
        say(
            f"archive of a person with {built['records']:,} records: peak {built['hwm'] / 1024:.0f} MB "
            f"({built['hwm_before'] / 1024:.0f} MB before the build), wall {built['wall']:.1f} s, "
            f"CPU {built['cpu']:.1f} s (rows added in {heavy['seconds']:.0f} s) — target < 150 MB"
        )
    say(f"load average at the end: {os.getloadavg()[0]:.2f}")
    (results / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"summary: {results / 'summary.md'}")


if __name__ == "__main__":
    main()
