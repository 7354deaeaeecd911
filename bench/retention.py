"""The retention sweep over expired consultation requests: throughput, peak memory, and what it
costs the site's consultation POST meanwhile.

    .venv/bin/python bench/retention.py [--persons 100000] [--load-seconds 30]
    DATABASE_URL=postgres://…/EMPTY_DB .venv/bin/python bench/retention.py   (a new, empty database)

A fresh data directory (or the empty PostgreSQL database) is filled by ``piwarden demo`` with
``--persons`` people, each with one consultation request, its consent and its audit events (five
activity rows each, the demo's shape), and every request is then made 800 days old (one UPDATE),
so that each is past the declared 730 days and each person's last record: the sweep deletes the
request and erases the person (consents withdrawn, data key destroyed, look-up digests cleared,
the erasure ledger, a ``person.shredded`` event), 500 per transaction with one ``retention.batch``
event each.

1. ``piwarden serve --no-housekeeping`` is started (gunicorn, two sync workers, the task worker);
   for ``--load-seconds`` two client threads POST the consultation form back to back (CAPTCHA in
   test mode, rate limit out of reach) and every answer's latency is kept: **without** the sweep.
2. ``piwarden retention sweep`` runs in its own process while the same load runs again: **during**.
   Its wall time gives the throughput (requests deleted and people erased per second), and
   ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` its peak resident memory.

Prints p50/p99 of the POST without and during, the ratio of the p99s, the sweep's figures, the
load average before and after, and the machine.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

from benchenv import configure

THREADS = 2

# The sweep's process reports its own peak resident memory when it ends.
MEASURED = (
    "import resource, runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module('piwarden', run_name='__main__')\n"
    "finally:\n"
    "    print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--load-seconds", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=0, help="0: the sweep's defaults")
    parser.add_argument(
        "--rows-only",
        type=int,
        default=0,
        help="instead: N expired rows that erase nobody (security alerts, 500 per batch); the batch machinery's "
        "own throughput and memory, under the same load (--load-seconds 0: none)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="piwarden-bench-retention-") as tmp:
        data_dir = Path(tmp)
        configure(data_dir, PIWARDEN_DEMO="on")
        env = dict(os.environ)
        if args.rows_only:
            rows_only(env, args.rows_only, args.load_seconds)
        else:
            run(env, args.persons, args.load_seconds, args.batch_size)


FILL_ALERTS = """
import datetime, sys
from django.utils import timezone
from piwarden.monitoring.models import Alert
n = int(sys.argv[-1]); old = timezone.now() - datetime.timedelta(days=1200)
for start in range(0, n, 10_000):
    Alert.objects.bulk_create([
        Alert(rule="bulk_reveals", events=31, threshold=30, window_minutes=10, first_seq=i, last_seq=i,
              first_at=old, last_at=old, raised_at=old)
        for i in range(start + 1, min(n, start + 10_000) + 1)
    ])
"""


def rows_only(env: dict[str, str], rows: int, seconds: float) -> None:
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"database: {'PostgreSQL' if env.get('DATABASE_URL', '').startswith('postgres') else 'SQLite (WAL)'}")
    _piwarden(env, "migrate", "--verbosity", "0")
    _piwarden(env, "keys", "init")
    fill = [sys.executable, "-m", "piwarden", "shell", "-c", FILL_ALERTS.replace("sys.argv[-1]", str(rows))]
    subprocess.run(fill, env=env, check=True, stdout=subprocess.DEVNULL)  # our own command
    argv = ["piwarden", "retention", "sweep", "--clock-confirmed"]
    result, wall = _sweep_under_load(env, argv, seconds)
    peak = re.search(r"MAXRSS (\d+)", result.stderr)
    deleted = re.search(r"staff_security_alerts \(monitoring.Alert\): (\d+) deleted", result.stdout)
    if deleted is None or peak is None:
        print(result.stdout, result.stderr)
        raise SystemExit("the sweep failed")
    print(
        f"sweep: {int(deleted[1]):,} expired rows deleted in {wall:.1f} s (process start included): "
        f"{int(deleted[1]) / wall:,.0f} rows/s; the sweep process's peak RSS {int(peak[1]) / 1024:.0f} MB; "
        f"load average after: {os.getloadavg()[0]:.2f}"
    )


def _piwarden(env: dict[str, str], *argv: str) -> None:
    subprocess.run([sys.executable, "-m", "piwarden", *argv], env=env, check=True, stdout=subprocess.DEVNULL)


def run(env: dict[str, str], persons: int, seconds: float, batch_size: int) -> None:
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"database: {'PostgreSQL' if env.get('DATABASE_URL', '').startswith('postgres') else 'SQLite (WAL)'}")
    _piwarden(env, "migrate", "--verbosity", "0")
    _piwarden(env, "keys", "init")
    began = time.perf_counter()
    _piwarden(env, "demo", "--persons", str(persons), "--activity", str(5 * persons))
    age = (
        "from django.db.models import F; import datetime; from piwarden.inquiries.models import Inquiry; "
        "print(Inquiry.objects.update(submitted_at=F('submitted_at') - datetime.timedelta(days=800)))"
    )
    aged = subprocess.run(  # our own command
        [sys.executable, "-m", "piwarden", "shell", "-c", age], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    print(f"filled {persons:,} people, {aged} requests made 800 days old, in {time.perf_counter() - began:.0f} s")
    argv = ["piwarden", "retention", "sweep", "--clock-confirmed"]
    if batch_size:
        argv += ["--batch-size", str(batch_size)]
    result, sweep_wall = _sweep_under_load(env, argv, seconds)
    peak = re.search(r"MAXRSS (\d+)", result.stderr)
    peak_mb = int(peak[1]) / 1024 if peak else float("nan")
    deleted = re.search(r"consultation \(inquiries.Inquiry\): (\d+) deleted, (\d+) person", result.stdout)
    rows, people = (int(deleted[1]), int(deleted[2])) if deleted else (0, 0)
    print(
        f"sweep: {rows:,} requests deleted and {people:,} people erased in {sweep_wall:.1f} s: "
        f"{rows / sweep_wall:,.0f} requests/s; the sweep process's peak RSS {peak_mb:.0f} MB"
    )


def _sweep_under_load(
    env: dict[str, str], argv: list[str], seconds: float
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the sweep (``argv``) in its own process, timed; with ``seconds`` > 0, while the site serves
    the consultation POST, after measuring the same load without it (the p99s and their ratio)."""
    if seconds <= 0:
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        began = time.perf_counter()
        result = subprocess.run(  # our own command, measured by itself
            [sys.executable, "-c", MEASURED, *argv], env=env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - began
        if result.returncode != 0:
            print(result.stdout, result.stderr)
            raise SystemExit("the sweep failed")
        return result, wall
    port = _free_port()
    site_env = {
        **env,
        "PORT": str(port),
        "PIWARDEN_CAPTCHA_TEST_MODE": "on",
        "PIWARDEN_CONSULTATION_RATE": "1000000/m",
        "PIWARDEN_HTTPS": "off",
    }
    # One address sends every POST: keep it under the risk rules' thresholds, as the rate limit's.
    site_env.update(PIWARDEN_RISK_HARDER_CAPTCHA="1000000000", PIWARDEN_RISK_BLOCK="2000000000")
    log = open(Path(env["PIWARDEN_DATA_DIR"]) / "serve.log", "wb")  # noqa: SIM115  # closed below
    serve = subprocess.Popen(  # our own command
        [sys.executable, "-m", "piwarden", "serve", "--workers", "2", "--no-housekeeping"],
        env=site_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for(port)
        _load(port, 3.0)  # warm-up
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        without = _load(port, seconds)
        _report("POST without the sweep", without, seconds)

        stop = threading.Event()
        during: list[float] = []
        loader = threading.Thread(target=lambda: during.extend(_load(port, 10_000, stop=stop)))
        loader.start()
        time.sleep(1.0)
        began = time.perf_counter()
        result = subprocess.run(  # our own command, measured by itself
            [sys.executable, "-c", MEASURED, *argv], env=env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - began
        stop.set()
        loader.join()
        if result.returncode != 0:
            print(result.stdout, result.stderr)
            raise SystemExit("the sweep failed")
        _report("POST during the sweep", during, wall)
        ratio = _p(during, 99) / _p(without, 99)
        print(f"p99 during / without: {ratio:.2f}; load average after: {os.getloadavg()[0]:.2f}")
        return result, wall
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(timeout=60)
        log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the site did not answer")


def _csrf(port: int) -> tuple[str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.request("GET", "/consultation/")
    response = connection.getresponse()
    body = response.read().decode()
    cookie = re.search(r"csrftoken=([^;]+)", response.getheader("set-cookie") or "")
    field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert cookie
    assert field
    return cookie[1], field[1]


def _load(port: int, seconds: float, stop: threading.Event | None = None) -> list[float]:
    """POST the form from THREADS threads for ``seconds`` (or until ``stop``); the latencies, in ms."""
    latencies: list[float] = []
    lock = threading.Lock()
    cookie, csrf = _csrf(port)
    ends = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < ends and not (stop is not None and stop.is_set()):
            token = str(uuid.uuid4())
            form = {
                "csrfmiddlewaretoken": csrf,
                "name": "张伟",
                "phone": "13800138000",
                "email": f"p{token[:8]}@example.com",
                "company": "示例科技有限公司",
                "industry": "finance",
                "position": "信息安全经理",
                "region": "CN",
                "product": "data",
                "consent": "on",
                "age_confirmed": "on",
                "submission_token": token,
                "captcha_0": "x",
                "captcha_1": "PASSED",
            }
            began = time.perf_counter()
            connection.request(
                "POST",
                "/consultation/",
                urllib.parse.urlencode(form),
                {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie}"},
            )
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - began) * 1000
            if response.status != 302:
                failures.append(f"POST answered {response.status}")
                return
            with lock:
                latencies.append(elapsed)

    failures: list[str] = []
    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(failures[0])
    return latencies


def _p(values: list[float], q: int) -> float:
    if len(values) < 2:
        raise SystemExit(
            f"only {len(values)} POST answered while measuring: give the sweep more rows or the load more time"
        )
    return statistics.quantiles(values, n=100)[q - 1]


def _report(label: str, latencies: list[float], seconds: float) -> None:
    print(
        f"{label}: {len(latencies):,} requests in {seconds:.0f} s ({len(latencies) / seconds:.0f}/s), "
        f"p50 {_p(latencies, 50):.1f} ms, p99 {_p(latencies, 99):.1f} ms"
    )


if __name__ == "__main__":
    main()
