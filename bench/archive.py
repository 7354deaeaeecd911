"""The archive of an access or copy request: build time and peak memory (issue 7's benchmark).

    .venv/bin/python bench/archive.py [--records 100000] [--rounds 5]          (SQLite, fresh temporary data dir)
    DATABASE_URL=postgres://…/EMPTY_DB .venv/bin/python bench/archive.py      (PostgreSQL: a new, empty database)

Two people, each submitted through the real write path (``submit_inquiry``: person, data key,
consent, encrypted request, audit events, two queued tasks):

* a *typical* person: that one request;
* a *heavy* person: the same, plus ``--records`` more rows inserted in bulk, half consultation
  requests (seven encrypted fields each, sealed under their data key) and half consent records.

Each ``build_archive`` runs in a child process of its own (``--child``), which reports its wall
and CPU time and its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and, for
comparison, the peak before the build (Django, the keys and the libraries loaded).  The typical
build runs ``--rounds`` times (the median is reported), the heavy one twice.  Targets: ≤ 1 s for
a typical person, peak < 150 MB for 100 000 records.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchenv import configure

HERE = Path(__file__).resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # PERSON_ID: build one archive and report
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="piwarden-bench-archive-") as tmp:
        configure(Path(tmp))
        parent(args.records, args.rounds)


def child(person_id: str) -> None:
    import django  # noqa: PLC0415  # only after the parent's configure()

    django.setup()
    from piwarden.people.models import Person  # noqa: PLC0415
    from piwarden.rights.archive import build_archive  # noqa: PLC0415
    from piwarden.vault.keys import get_provider  # noqa: PLC0415

    get_provider().kek()  # as a worker starts: the key-encryption keys loaded before any work
    person = Person.objects.get(pk=person_id)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_before = high_water_mark()
    wall, cpu = time.perf_counter(), time.process_time()
    archive = build_archive(person, reference=f"BENCH-{uuid.uuid4().hex[:8]}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    report = {
        "wall": wall,
        "cpu": cpu,
        "rss_before_kb": before,
        "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "hwm_before_kb": hwm_before,
        "hwm_peak_kb": high_water_mark(),
        "records": archive.records_done,
        "zip_bytes": archive.size,
    }
    print(json.dumps(report))


def high_water_mark() -> int:
    """This process's own peak resident memory in KiB (VmHWM), which an exec starts afresh.

    ``ru_maxrss`` does not: Linux carries it across ``fork`` + ``exec``, so a child started by a
    parent that filled 100 000 rows reports the parent's peak when its own is lower.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def parent(records: int, rounds: int) -> None:
    import django  # noqa: PLC0415  # only after configure()
    from django.core.management import call_command  # noqa: PLC0415

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("keys", "init", stdout=io.StringIO())
    from django.db import connection  # noqa: PLC0415

    print(f"backend: {connection.vendor}; load average before: {os.getloadavg()[0]:.2f}")
    typical = submitted("typical")
    heavy = submitted("heavy")
    started = time.perf_counter()
    fill(heavy, records)
    print(f"inserted {records} rows for the heavy person in {time.perf_counter() - started:.1f} s")
    connection.close()

    runs = [build(typical) for _ in range(rounds)]
    show("typical person", runs)
    runs = [build(heavy) for _ in range(2)]
    show(f"person with {records} extra rows", runs)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def submitted(name: str) -> str:
    from piwarden.inquiries.actions import Submission, submit_inquiry  # noqa: PLC0415

    values = {
        "name": f"张伟 {name}",
        "phone": "+8613800138000",
        "email": f"{name}-{uuid.uuid4().hex[:8]}@example.com",
        "company": "示例科技有限公司",
        "industry": "finance",
        "position": "信息安全经理",
        "region": "CN",
        "product": "data",
    }
    submission = Submission(values, uuid.uuid4(), "zh-hans", "我同意为答复咨询处理以上信息。")
    inquiry, _ = submit_inquiry(submission)
    return str(inquiry.person_id)


def fill(person_id: str, records: int) -> None:
    """``records`` rows in bulk: half consultation requests (encrypted), half consent records."""
    from django.db import transaction  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    from piwarden.consent.models import ConsentRecord  # noqa: PLC0415
    from piwarden.inquiries.models import Inquiry  # noqa: PLC0415
    from piwarden.people.models import Person  # noqa: PLC0415

    person = Person.objects.get(pk=person_id)
    template = ConsentRecord.objects.get(person=person)
    batch = 5000
    requests, consents = records // 2, records - records // 2
    for start in range(0, requests, batch):
        rows = [
            Inquiry(
                person=person,
                data_key_id=person.data_key_id,
                submission_token=uuid.uuid4(),
                language="zh-hans",
                name=f"张伟 {i}",
                phone="+8613800138000",
                email=f"bench-{i}@example.com",
                company="示例科技有限公司",
                industry="finance",
                position="信息安全经理",
                region="CN",
                product="data",
            )
            for i in range(start, min(start + batch, requests))
        ]
        with transaction.atomic():
            Inquiry.objects.bulk_create(rows)
    now = timezone.now()
    for start in range(0, consents, batch):
        rows = [
            ConsentRecord(
                person=person,
                purpose=template.purpose,
                kind=template.kind,
                policy_version=template.policy_version,
                policy_id=template.policy_id,
                purpose_hash=template.purpose_hash,
                channel="bench",
                language="zh-hans",
                shown_text=template.shown_text,
                given_at=now,
                withdrawn_at=now,
            )
            for _ in range(start, min(start + batch, consents))
        ]
        with transaction.atomic():
            ConsentRecord.objects.bulk_create(rows)


def build(person_id: str) -> dict[str, float]:
    result = subprocess.run(  # our own script, fixed argv
        [sys.executable, str(HERE), "--child", person_id], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"the build failed:\n{result.stderr}")
    report: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def show(label: str, runs: list[dict[str, float]]) -> None:
    wall = statistics.median(r["wall"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    peak = max(r["hwm_peak_kb"] for r in runs) / 1024
    before = max(r["hwm_before_kb"] for r in runs) / 1024
    maxrss = max(r["rss_peak_kb"] for r in runs) / 1024
    last = runs[-1]
    print(
        f"{label}: {last['records']:.0f} records, zip {last['zip_bytes'] / 1e6:.1f} MB; "
        f"build wall {wall * 1000:.0f} ms, CPU {cpu * 1000:.0f} ms (median of {len(runs)}); "
        f"peak RSS {peak:.0f} MB (VmHWM; {before:.0f} MB before the build; getrusage ru_maxrss {maxrss:.0f} MB)"
    )


if __name__ == "__main__":
    main()
