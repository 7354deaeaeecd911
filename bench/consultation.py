"""`make bench`: the consultation POST through the whole privacy path, against a bare Django view.

Two arms, served by one gunicorn (the configuration of `piwarden serve`) in one run:

* privacy — ``POST /consultation/``: rate limit, CAPTCHA, form, replay check, person + data key
  (blind indexes, Tink), consent record, processing gate, encrypted inquiry, audit events on the
  hash chain, two queued tasks — one transaction;
* baseline — ``POST /bench/baseline/`` (``bench/bench_baseline``): a plain Django form over the same
  fields (same lengths, phone via phonenumbers, choices from the declaration) and one plaintext row.

Both are CSRF-protected and get the same urlencoded body.  Load comes from ``wrk`` (A B A B, a
warm-up before every run); every run is checked (rows created against wrk's request count, no
non-2xx/3xx response).  Then, in this process, ``time.process_time()`` over a few hundred POSTs
per arm through Django's test client gives the CPU time per request.

The CAPTCHA stays on (the production setting) with real challenges: the script stores challenges
whose answers it knows, exactly as the form's GET would, and wrk answers each one once.  The
rate limit stays on too, with a limit no run reaches.  Everything goes to a fresh
``bench/results/<timestamp>/`` (its ``summary.md`` is what docs/performance.md quotes).

    .venv/bin/python bench/consultation.py      (or: make bench)
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
LUA = BENCH_DIR / "consultation.lua"

WORKERS = 2  # gunicorn sync workers (the `piwarden serve` default; the machine has 2 cores)
THREADS = 2  # wrk threads
CONNECTIONS = 8
WARMUP_S = 3
DURATION_S = 10
ROUNDS = 2  # A B A B
CPU_N = 120  # POSTs per arm and round, in process (5 short interleaved rounds: robust to load bursts)
CPU_ROUNDS = 5
CPU_WARMUP = 30
TARGET = 0.7

PRIVACY_PATH = "/consultation/"
BASELINE_PATH = "/bench/baseline/"
SEED_CHALLENGE = "BENCH"  # marks the CAPTCHA challenges this script stores
CAPTCHA_ANSWER = "bench"
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass
class Run:
    arm: str
    round: int
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    status_errors: int
    socket_errors: int
    rows: int
    problems: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


# --- set-up -------------------------------------------------------------------------------------


def configure(data_dir: Path) -> None:
    """The environment of both the server and this process (before Django is imported)."""
    for inherited in ("DATABASE_URL", "PIWARDEN_KEYS", "SECRET_KEY", "SECRET_KEY_FILE", "PIWARDEN_CAPTCHA_TEST_MODE"):
        os.environ.pop(inherited, None)  # the embedded defaults: SQLite + local keys in the fresh data dir
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "piwarden.settings",
            "PIWARDEN_DATA_DIR": str(data_dir),
            "PIWARDEN_BENCH": "on",
            "PIWARDEN_CAPTCHA": "on",
            # The limit stays in the request path (one counter upsert per POST) but is never reached.
            "PIWARDEN_CONSULTATION_RATE": "100000000/h",
            "PIWARDEN_EMAIL": "file",
            "DEBUG": "off",
            "LOG_LEVEL": "WARNING",
        }
    )
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))


def prepare() -> None:
    import django  # noqa: PLC0415  # only after configure()
    from django.core.management import call_command  # noqa: PLC0415

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("keys", "init", stdout=io.StringIO())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    # The argv of `piwarden serve` (src/piwarden/site/management/commands/serve.py), plus bench/ on
    # the path for the baseline app.  No task worker: the queued e-mails are not part of the POST.
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "piwarden.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WORKERS),
        "--graceful-timeout",
        "10",
        "--log-level",
        "warning",
        "--pythonpath",
        str(BENCH_DIR),
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(server, f"http://127.0.0.1:{port}{PRIVACY_PATH}", log)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_until_ready(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench: gunicorn exited ({server.returncode}); see {log}")
        try:
            with urllib.request.urlopen(url, timeout=20) as r:  # noqa: S310  # our own server
                if r.status == 200:
                    return
        except OSError:  # not listening yet, or a worker still booting
            time.sleep(0.3)
    raise SystemExit(f"bench: gunicorn did not answer within 60 s; see {log}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def csrf_pair(base: str) -> tuple[str, str]:
    """The csrftoken cookie and the form's csrfmiddlewaretoken, from one GET of the real form."""
    with urllib.request.urlopen(base + PRIVACY_PATH, timeout=10) as r:  # noqa: S310  # our own server
        html = r.read().decode()
        cookies = r.headers.get_all("Set-Cookie") or []
    cookie = next(m.group(1) for c in cookies if (m := re.match(r"csrftoken=([^;]+)", c)))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token is not None, "the consultation form has no CSRF token"
    return cookie, token.group(1)


def static_fields() -> dict[str, str]:
    """The fields every request shares (e-mail, phone and submission token vary per request)."""
    from piwarden.policy.declaration import load_declaration  # noqa: PLC0415

    declaration = load_declaration()
    return {
        "name": "张伟",
        "company": "示例科技有限公司",
        "industry": declaration.industries[0].id,
        "position": "信息安全经理",
        "region": "CN",
        "product": declaration.products[0].id,
        "consent": "on",
    }


# --- CAPTCHA challenges and row counts ----------------------------------------------------------


def seed_captcha(n: int) -> list[str]:
    """Store n challenges whose answer is known: what n GETs of the form would have stored."""
    from captcha.conf import settings as captcha_settings  # noqa: PLC0415
    from captcha.models import CaptchaStore  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    expiration = timezone.now() + datetime.timedelta(minutes=int(captcha_settings.CAPTCHA_TIMEOUT))
    keys = [secrets.token_hex(20) for _ in range(n)]
    CaptchaStore.objects.bulk_create(
        [
            CaptchaStore(challenge=SEED_CHALLENGE, response=CAPTCHA_ANSWER, hashkey=k, expiration=expiration)
            for k in keys
        ],
        batch_size=500,
    )
    return keys


def clear_captcha() -> None:
    from captcha.models import CaptchaStore  # noqa: PLC0415

    CaptchaStore.objects.filter(challenge=SEED_CHALLENGE).delete()


def settled_rows(arm: str, p90_us: int) -> int:
    """The arm's row count once the server has finished what wrk left in flight.

    wrk stops with up to one request per connection queued at the server, which still completes
    it; wait until the count holds still for 1.5x the run's p90 latency (at least 1 s, at most 5 s).
    """
    window = min(5.0, max(1.0, 1.5 * p90_us / 1e6))
    count = rows(arm)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(window)
        now = rows(arm)
        if now == count:
            return now
        count = now
    return count


def rows(arm: str) -> int:
    from bench_baseline.models import BaselineInquiry  # noqa: PLC0415

    from piwarden.inquiries.models import Inquiry  # noqa: PLC0415

    return (Inquiry if arm == "privacy" else BaselineInquiry).objects.count()


# --- load ---------------------------------------------------------------------------------------


class Load:
    """wrk against the running server, one arm at a time, with the CSRF pair of one GET of the form."""

    def __init__(self, base: str, out: Path) -> None:
        self.base = base
        self.out = out
        self.cookie, token = csrf_pair(base)
        self.body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **static_fields()})
        self.seq = 0

    def wrk(self, arm: str, seconds: int, keys: list[str] | None, log: Path) -> dict[str, int]:
        path = PRIVACY_PATH if arm == "privacy" else BASELINE_PATH
        self.seq += 1
        tag = f"{int(time.time()) % 100000}{self.seq:03d}"  # makes the e-mail addresses unique
        keys_file = ""
        if keys is not None:
            keys_path = log.with_suffix(".keys")
            keys_path.write_text("\n".join(keys) + "\n")
            keys_file = str(keys_path)
        argv = [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "10s",  # wrk's default (2 s) would cut the privacy path's tail off the latency figures
            "-s",
            str(LUA),
            self.base + path,
            "--",
            path,
            self.cookie,
            self.body,
            tag,
            str(THREADS),
            keys_file,
            CAPTCHA_ANSWER,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)
        log.write_text(" ".join(argv[:10]) + " -- …\n\n" + done.stdout + done.stderr)
        if keys_file:
            Path(keys_file).unlink()
        match = re.search(r"^BENCH_RESULT (.*)$", done.stdout, re.MULTILINE)
        if done.returncode != 0 or match is None:
            raise SystemExit(f"bench: wrk failed ({done.returncode}); see {log}")
        return {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}

    def measure(self, arm: str, round_no: int) -> Run:
        privacy = arm == "privacy"
        warm = self.wrk(
            arm, WARMUP_S, seed_captcha(3000) if privacy else None, self.out / f"wrk-{round_no}-{arm}-warmup.txt"
        )
        before = settled_rows(arm, warm["p90_us"])
        clear_captcha()
        # Challenges for 2.5x the warm-up's pace; a shortfall would show as refused requests.
        needed = int(warm["requests"] / WARMUP_S * DURATION_S * 2.5) + 1000
        result = self.wrk(
            arm, DURATION_S, seed_captcha(needed) if privacy else None, self.out / f"wrk-{round_no}-{arm}.txt"
        )
        created = settled_rows(arm, result["p90_us"]) - before
        clear_captcha()
        run = Run(
            arm=arm,
            round=round_no,
            requests=result["requests"],
            seconds=result["duration_us"] / 1e6,
            p50_ms=result["p50_us"] / 1000,
            p90_ms=result["p90_us"] / 1000,
            p99_ms=result["p99_us"] / 1000,
            status_errors=result["status"],
            socket_errors=sum(result[k] for k in ("connect", "read", "write", "timeout")),
            rows=created,
        )
        if run.status_errors:
            run.problems.append(f"{run.status_errors} non-2xx/3xx responses")
        if run.socket_errors:
            run.problems.append(f"{run.socket_errors} socket errors or timeouts (> 10 s)")
        if warm["status"]:
            run.problems.append(f"{warm['status']} non-2xx/3xx responses during the warm-up")
        # wrk counts completed responses; up to one request per connection may complete after it stops.
        if not run.requests <= created <= run.requests + CONNECTIONS:
            run.problems.append(f"{created} rows created for {run.requests} requests")
        print(
            f"  round {round_no} {arm:8} {run.rps:7.1f} req/s  p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms  "
            f"rows {created}/{run.requests}  {'; '.join(run.problems) or 'ok'}",
            flush=True,
        )
        return run


# --- CPU time in process -------------------------------------------------------------------------


class InProcess:
    """Django's test client with CSRF enforced: the WSGI handler and the whole middleware stack."""

    def __init__(self) -> None:
        from django.test import Client  # noqa: PLC0415

        self.client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
        html = self.client.get(PRIVACY_PATH).content.decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert token is not None
        self.static = {"csrfmiddlewaretoken": token.group(1), **static_fields()}
        self.n = 0

    def bodies(self, n: int, *, captcha: bool) -> list[str]:
        keys = seed_captcha(n) if captcha else [""] * n
        out = []
        for key in keys:
            self.n += 1
            data = {
                **self.static,
                "email": f"cpu.{self.n}@example.com",
                "phone": f"139{self.n % 100000000:08d}",
                "submission_token": str(uuid.uuid4()),
            }
            if key:
                data |= {"captcha_0": key, "captcha_1": CAPTCHA_ANSWER}
            out.append(urllib.parse.urlencode(data))
        return out

    def post_all(self, arm: str, bodies: list[str]) -> list[int]:
        path = PRIVACY_PATH if arm == "privacy" else BASELINE_PATH
        return [self.client.post(path, body, content_type=FORM_TYPE).status_code for body in bodies]

    def cpu_round(self, arm: str, n: int) -> tuple[float, float]:
        """(CPU µs, wall µs) per request over n POSTs; every one must redirect and create a row."""
        from django.test import override_settings  # noqa: PLC0415

        target = "baseline" if arm == "baseline" else "privacy"
        captcha = arm == "privacy"  # "privacy-nocaptcha": the privacy path with PIWARDEN_CAPTCHA=off
        with override_settings(PIWARDEN_CAPTCHA="on" if captcha else "off"):
            bodies = self.bodies(n, captcha=captcha)
            before = rows(target)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            statuses = self.post_all(target, bodies)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        clear_captcha()
        bad = [s for s in statuses if s != 302]
        created = rows(target) - before
        if bad or created != n:
            raise SystemExit(f"bench: in-process {arm}: statuses {sorted(set(bad))}, {created} rows for {n} POSTs")
        return cpu / n * 1e6, wall / n * 1e6

    def work_per_request(self, arm: str, n: int = 20) -> tuple[float, dict[str, float], dict[str, float]]:
        """(SQL statements per request, by first keyword, rows added per request by table) over n POSTs.

        Counted with an execute wrapper, so COMMIT (a driver call, not a statement) is not included.
        """
        from django.apps import apps  # noqa: PLC0415
        from django.db import connection  # noqa: PLC0415

        models = apps.get_models()

        def counts() -> dict[str, int]:
            return {m._meta.db_table: m._default_manager.count() for m in models}

        kinds: dict[str, int] = {}

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            word = sql.split(None, 1)[0].upper()
            kinds[word] = kinds.get(word, 0) + 1
            return execute(sql, params, many, context)

        bodies = self.bodies(n, captcha=arm == "privacy")
        before = counts()
        with connection.execute_wrapper(count):
            self.post_all(arm, bodies)
        after = counts()
        clear_captcha()
        added = {t: (after[t] - before[t]) / n for t in after if after[t] != before[t]}
        per_request = {k: v / n for k, v in sorted(kinds.items())}
        return sum(kinds.values()) / n, per_request, added


# --- report -------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    return {
        "CPU": model.group(1).strip() if model else platform.processor() or "unknown",
        "cores": f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable)",
        "memory": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "unknown",
        "kernel": f"{platform.system()} {platform.release()}",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "Python": platform.python_version(),
        "Django": metadata.version("django"),
        "gunicorn": metadata.version("gunicorn"),
        "tink": metadata.version("tink"),
        "SQLite": sqlite3.sqlite_version,
        "wrk": wrk_version.split(" [")[0],
    }


def median_rps(runs: list[Run], arm: str) -> float:
    return statistics.median(r.rps for r in runs if r.arm == arm)


def summary(
    *,
    started: str,
    facts: dict[str, str],
    runs: list[Run],
    cpu: dict[str, list[tuple[float, float]]],
    work: dict[str, tuple[float, dict[str, float], dict[str, float]]],
    elapsed: float,
) -> str:
    ratio = median_rps(runs, "privacy") / median_rps(runs, "baseline")
    lines = [
        f"# make bench — consultation POST, privacy path vs bare Django view ({started})",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in facts.items()],
        "",
        f"Server: gunicorn {WORKERS} sync workers (`piwarden serve`'s argv), DEBUG off, SQLite WAL in a fresh "
        f"data dir. Load: `wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION_S}s --timeout 10s` after a {WARMUP_S} s "
        f"warm-up, arms interleaved (A B A B). CAPTCHA on (seeded challenges), rate limit on (never reached).",
        "",
        "## Throughput and latency (server)",
        "",
        "| round | arm | requests | req/s | p50 ms | p90 ms | p99 ms | rows created | non-2xx/3xx | socket errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {r.round} | {r.arm} | {r.requests} | {r.rps:.1f} | {r.p50_ms:.1f} | {r.p90_ms:.1f} | {r.p99_ms:.1f} "
            f"| {r.rows} | {r.status_errors} | {r.socket_errors} |"
            for r in runs
        ],
        "",
        f"**Throughput ratio** (median privacy req/s ÷ median baseline req/s): **{ratio:.2f}** "
        f"(target ≥ {TARGET}: {'met' if ratio >= TARGET else 'NOT met'}).",
        "Per round: "
        + ", ".join(
            f"{p.rps / b.rps:.2f}"
            for p, b in zip(
                [r for r in runs if r.arm == "privacy"], [r for r in runs if r.arm == "baseline"], strict=True
            )
        )
        + ".",
        "",
        "## CPU time per request (in process, Django test client, CSRF enforced)",
        "",
        "| arm | "
        + " | ".join(f"round {i + 1} CPU µs" for i in range(CPU_ROUNDS))
        + " | median CPU µs | median wall µs |",
        "|---|" + "---|" * (CPU_ROUNDS + 2),
    ]
    medians: dict[str, float] = {}
    for arm, rounds in cpu.items():
        medians[arm] = statistics.median(c for c, _ in rounds)
        wall = statistics.median(w for _, w in rounds)
        cells = " | ".join(f"{c:.0f}" for c, _ in rounds)
        lines.append(f"| {arm} | {cells} | {medians[arm]:.0f} | {wall:.0f} |")
    lines += [
        "",
        f"CPU ratio (baseline µs ÷ privacy µs, the throughput ratio CPU alone would allow): "
        f"**{medians['baseline'] / medians['privacy']:.2f}**; without the CAPTCHA: "
        f"{medians['baseline'] / medians['privacy-nocaptcha']:.2f}. {CPU_N} POSTs per arm and round after "
        f"{CPU_WARMUP} warm-up POSTs.",
        "",
        "## Work per request (in process, averaged over 20 POSTs)",
        "",
        "| arm | SQL statements | by kind | rows added, by table |",
        "|---|---|---|---|",
    ]
    for arm, (statements, kinds, added) in work.items():
        kinds_text = ", ".join(f"{k} {v:g}" for k, v in kinds.items())
        added_text = ", ".join(f"{t} {v:g}" for t, v in sorted(added.items())) or "—"
        lines.append(f"| {arm} | {statements:g} | {kinds_text} | {added_text} |")
    problems = [f"round {r.round} {r.arm}: {p}" for r in runs for p in r.problems]
    lines += [
        "",
        "## Checks",
        "",
        *(f"- FAILED: {p}" for p in problems),
        *(
            []
            if problems
            else [
                "- every run: rows created = wrk's completed requests (+ at most one in flight per connection), "
                "no non-2xx/3xx response, no socket error or timeout"
            ]
        ),
        f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; total time {elapsed:.0f} s",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed. Install it (Debian: `apt-get install -y wrk`) and run `make bench` again.")
        return 2
    started_at = time.monotonic()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    out = BENCH_DIR / "results" / started
    out.mkdir(parents=True)
    configure(out / "data")
    facts = machine()
    print(f"bench: results in {out}", flush=True)
    prepare()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, out / "gunicorn.log")
    runs: list[Run] = []
    try:
        load = Load(base, out)
        for round_no in range(1, ROUNDS + 1):
            runs.extend(load.measure(arm, round_no) for arm in ("privacy", "baseline"))
    finally:
        stop_server(server)

    print("  CPU time per request, in process …", flush=True)
    inproc = InProcess()
    arms = ("privacy", "privacy-nocaptcha", "baseline")
    for arm in arms:
        inproc.cpu_round(arm, CPU_WARMUP)
    cpu: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    for _ in range(CPU_ROUNDS):
        for arm in arms:
            cpu[arm].append(inproc.cpu_round(arm, CPU_N))
    work = {arm: inproc.work_per_request(arm) for arm in ("privacy", "baseline")}

    text = summary(started=started, facts=facts, runs=runs, cpu=cpu, work=work, elapsed=time.monotonic() - started_at)
    (out / "summary.md").write_text(text)
    print()
    print(text)
    return 1 if any(r.problems for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
