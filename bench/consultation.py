"""`make bench`: piwarden's requests against bare Django references, in one run on one server.

Arms (each compared with its reference; the ratio is the reference's cost over the arm's):

* ``POST privacy`` — ``POST /consultation/``: the whole privacy path (rate limit, CAPTCHA, form,
  person + data key, consent, gate, encrypted inquiry, audit, queued tasks), against
  ``POST lean`` — ``POST /bench/baseline/`` (``bench/bench_baseline``): a plain Django form over the
  same fields with its choices built once, and one plaintext INSERT;
* ``GET form`` — ``GET /consultation/``: the form page, with the CAPTCHA challenge row it stores;
* ``GET home`` / ``GET privacy`` / ``GET contact`` — the public pages;
  the GET arms against ``GET bare`` — ``GET /bench/baseline/page/``: one ~3 KB template through
  ``render()``;
* ``GET captcha`` — the CAPTCHA picture (``/captcha/image/<key>/``), against its 2 ms budget.

Every arm goes through the same middleware (CSRF included).  GETs ask for compression as a browser
does (``Accept-Encoding: gzip, deflate, br``).  For each arm the script reports:

* req/s, p50 and p99 latency under ``wrk`` against gunicorn with two sync workers (`piwarden
  serve`'s argv), arms interleaved, a warm-up before every run;
* CPU time per request, in this process through Django's test client (5 interleaved rounds, median);
* SQL statements per request and the time the SQLite write lock is held per request (from
  ``BEGIN IMMEDIATE``, or a write in autocommit, to the end of ``COMMIT``), in process.

The CAPTCHA stays on (the production setting) with real challenges: the script stores challenges
whose answers it knows, exactly as the form's GET would, and wrk answers each one once.  The
rate limit stays on too, with a limit no run reaches.  Every run is checked (rows created against
wrk's request count, no non-2xx/3xx answer, no socket error).  Everything goes to a fresh
``bench/results/<timestamp>/`` (its ``summary.md`` is what docs/performance.md quotes).

    .venv/bin/python bench/consultation.py      (or: make bench)
"""

from __future__ import annotations

import argparse
import datetime
import gc
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
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
POST_LUA = BENCH_DIR / "consultation.lua"
GET_LUA = BENCH_DIR / "get.lua"

WORKERS = 2  # gunicorn sync workers (the `piwarden serve` default; the machine has 2 cores)
THREADS = 2  # wrk threads
CONNECTIONS = 8
ROUNDS = 2  # every arm, interleaved: A B C … A B C …
POST_WARMUP_S, POST_DURATION_S = 3, 10
GET_WARMUP_S, GET_DURATION_S = 2, 5
CPU_ROUNDS = 5  # short interleaved rounds: robust to load bursts on a shared machine
CPU_N = {"POST": 120, "GET": 200}  # requests per arm and round, in process
CPU_WARMUP = 30
WORK_N = 20  # requests over which statements and the write lock are averaged

BROWSER_ENCODINGS = "gzip, deflate, br"
SEED_CHALLENGE = "BENCH"  # marks the CAPTCHA challenges this script stores
CAPTCHA_ANSWER = "bench"
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Arm:
    name: str
    method: str
    path: str
    reference: str = ""  # the arm it is compared with
    target: float = 0.0  # reference CPU ÷ arm CPU (and req/s ratio) must reach this
    cpu_budget_us: float = 0.0  # or: CPU per request must stay under this

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


CAPTCHA_KEY = "0" * 40  # the one challenge the picture arm draws again and again (stored by prepare())
ARMS = (
    Arm("POST privacy", "POST", "/consultation/", reference="POST lean", target=0.5),
    Arm("POST lean", "POST", "/bench/baseline/"),
    Arm("GET form", "GET", "/consultation/", reference="GET bare", target=0.5),
    Arm("GET home", "GET", "/", reference="GET bare", target=0.8),
    Arm("GET privacy", "GET", "/privacy/", reference="GET bare", target=0.8),
    Arm("GET contact", "GET", "/contact/", reference="GET bare", target=0.8),
    Arm("GET bare", "GET", "/bench/baseline/page/"),
    Arm("GET captcha", "GET", f"/captcha/image/{CAPTCHA_KEY}/", cpu_budget_us=2000),
)
BY_NAME = {arm.name: arm for arm in ARMS}


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
    rows: int | None  # rows the run created, where an arm creates one per request
    problems: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass
class Work:
    statements: float
    kinds: dict[str, float]
    lock_us: float
    added: dict[str, float]


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
            # Likewise the risk rules (piwarden.security): their day counter is upserted on every POST,
            # but one benchmarking address is not an attack to answer with a CAPTCHA or a block.
            "PIWARDEN_RISK_HARDER_CAPTCHA": "1000000000",
            "PIWARDEN_RISK_BLOCK": "2000000000",
            "PIWARDEN_EMAIL": "file",
            "DEBUG": "off",
            "LOG_LEVEL": "WARNING",
        }
    )
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    # As `piwarden serve` does: the directory exists before the settings are read, so that the secret
    # key is written once and shared by this process and both gunicorn workers.
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def prepare() -> None:
    """What `piwarden serve` does before it starts gunicorn, plus the picture arm's challenge."""
    import django  # noqa: PLC0415  # only after configure()
    from django.core.management import call_command  # noqa: PLC0415

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("keys", "init", stdout=io.StringIO())
    call_command("collectstatic", interactive=False, verbosity=0)

    from captcha.models import CaptchaStore  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    CaptchaStore.objects.create(
        challenge="K7QHM", response="k7qhm", hashkey=CAPTCHA_KEY, expiration=timezone.now() + datetime.timedelta(days=1)
    )


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
        "--config",
        "python:piwarden.gunicorn_conf",
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
        wait_until_ready(server, f"http://127.0.0.1:{port}/consultation/", log)
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
    with urllib.request.urlopen(base + "/consultation/", timeout=10) as r:  # noqa: S310  # our own server
        html = r.read().decode()
        cookies = r.headers.get_all("Set-Cookie") or []
    cookie = next(m.group(1) for c in cookies if (m := re.match(r"csrftoken=([^;]+)", c)))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token is not None, "the consultation form has no CSRF token"
    return cookie, token.group(1)


def static_fields() -> dict[str, str]:
    """The fields every POST shares (e-mail, phone and submission token vary per request)."""
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
        "age_confirmed": "on",
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


def rows(arm: Arm) -> int | None:
    """The rows that show one request of this arm was served in full (None: the arm stores nothing)."""
    from bench_baseline.models import BaselineInquiry  # noqa: PLC0415
    from captcha.models import CaptchaStore  # noqa: PLC0415

    from piwarden.inquiries.models import Inquiry  # noqa: PLC0415

    if arm.name == "POST privacy":
        return Inquiry.objects.count()
    if arm.name == "POST lean":
        return BaselineInquiry.objects.count()
    if arm.name == "GET form":  # each GET stores the challenge its picture shows
        return CaptchaStore.objects.exclude(challenge=SEED_CHALLENGE).count()
    return None


def settled_rows(arm: Arm, p90_us: int) -> int | None:
    """The arm's row count once the server has finished what wrk left in flight.

    wrk stops with up to one request per connection queued at the server, which still completes
    it; wait until the count holds still for 1.5x the run's p90 latency (at least 1 s, at most 5 s).
    """
    count = rows(arm)
    if count is None:
        return None
    window = min(5.0, max(1.0, 1.5 * p90_us / 1e6))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(window)
        now = rows(arm)
        if now == count:
            return now
        count = now
    return count


# --- load ---------------------------------------------------------------------------------------


class Load:
    """wrk against the running server, one arm at a time; POSTs carry the CSRF pair of one GET."""

    def __init__(self, base: str, out: Path) -> None:
        self.base = base
        self.out = out
        self.cookie, token = csrf_pair(base)
        self.body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **static_fields()})
        self.seq = 0

    def wrk(self, arm: Arm, seconds: int, keys: list[str] | None, log: Path) -> dict[str, int]:
        common = [f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
        if arm.method == "GET":
            argv = ["wrk", *common, "-H", f"Accept-Encoding: {BROWSER_ENCODINGS}", "-s", str(GET_LUA)]
            argv.append(self.base + arm.path)
            keys_file = ""
        else:
            self.seq += 1
            tag = f"{int(time.time()) % 100000}{self.seq:03d}"  # makes the e-mail addresses unique
            keys_file = ""
            if keys is not None:
                keys_path = log.with_suffix(".keys")
                keys_path.write_text("\n".join(keys) + "\n")
                keys_file = str(keys_path)
            argv = ["wrk", *common, "-s", str(POST_LUA), self.base + arm.path, "--", arm.path, self.cookie]
            argv += [self.body, tag, str(THREADS), keys_file, CAPTCHA_ANSWER]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)
        log.write_text(" ".join(argv[:12]) + " …\n\n" + done.stdout + done.stderr)
        if keys_file:
            Path(keys_file).unlink()
        match = re.search(r"^BENCH_RESULT (.*)$", done.stdout, re.MULTILINE)
        if done.returncode != 0 or match is None:
            raise SystemExit(f"bench: wrk failed ({done.returncode}); see {log}")
        return {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}

    def measure(self, arm: Arm, round_no: int) -> Run:
        privacy = arm.name == "POST privacy"
        warmup_s, duration_s = (
            (POST_WARMUP_S, POST_DURATION_S) if arm.method == "POST" else (GET_WARMUP_S, GET_DURATION_S)
        )
        warm = self.wrk(
            arm, warmup_s, seed_captcha(3000) if privacy else None, self.out / f"wrk-{round_no}-{arm.slug}-warmup.txt"
        )
        before = settled_rows(arm, warm["p90_us"])
        clear_captcha()
        # Challenges for 2.5x the warm-up's pace; a shortfall would show as refused requests.
        needed = int(warm["requests"] / warmup_s * duration_s * 2.5) + 1000
        result = self.wrk(
            arm, duration_s, seed_captcha(needed) if privacy else None, self.out / f"wrk-{round_no}-{arm.slug}.txt"
        )
        after = settled_rows(arm, result["p90_us"])
        clear_captcha()
        created = None if before is None or after is None else after - before
        run = Run(
            arm=arm.name,
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
        if created is not None and not run.requests <= created <= run.requests + CONNECTIONS:
            run.problems.append(f"{created} rows created for {run.requests} requests")
        rows_text = "" if created is None else f"  rows {created}/{run.requests}"
        print(
            f"  round {round_no} {arm.name:13} {run.rps:7.1f} req/s  p50 {run.p50_ms:6.1f} ms  "
            f"p99 {run.p99_ms:6.1f} ms{rows_text}  {'; '.join(run.problems) or 'ok'}",
            flush=True,
        )
        return run


# --- in process: CPU time, statements, write lock ------------------------------------------------


class WriteLockClock:
    """Counts statements and times the SQLite write lock: an execute wrapper plus the connection's commit.

    SQLite takes the database's write lock at ``BEGIN IMMEDIATE`` (the site's transaction mode) and
    releases it when the transaction ends; a write outside a transaction holds it for that statement.
    ``COMMIT`` is a driver call that no execute wrapper sees, so the connection's ``_commit`` and
    ``_rollback`` are wrapped for the measurement (instance attributes, removed afterwards).
    """

    WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.kinds: Counter[str] = Counter()
        self.held = 0.0
        self.since: float | None = None

    def __enter__(self) -> WriteLockClock:
        for name in ("_commit", "_rollback"):
            original = getattr(self.connection, name)
            setattr(self.connection, name, self._ending(original))
        self._wrapper = self.connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._wrapper.__exit__(*exc)
        del self.connection._commit, self.connection._rollback

    def _ending(self, original: Any) -> Any:
        def end() -> Any:
            try:
                return original()
            finally:
                if self.since is not None:
                    self.held += time.perf_counter() - self.since
                    self.since = None

        return end

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        word = sql.split(None, 1)[0].upper()
        self.kinds[word] += 1
        started = time.perf_counter()
        if word == "BEGIN" and self.since is None:
            self.since = started
        try:
            return execute(sql, params, many, context)
        finally:
            if word in self.WRITES and self.since is None:
                if self.connection.get_autocommit():
                    self.held += time.perf_counter() - started  # its own implicit transaction
                else:
                    self.since = started  # a deferred transaction: locked from its first write


class InProcess:
    """Django's test client with CSRF enforced: the WSGI handler and the whole middleware stack."""

    def __init__(self) -> None:
        from django.test import Client  # noqa: PLC0415

        self.client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
        html = self.client.get("/consultation/").content.decode()
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

    def requests(self, arm: Arm, n: int) -> Any:
        """A function that sends n requests of this arm and returns their status codes (prepared outside it)."""
        if arm.method == "GET":
            headers = {"Accept-Encoding": BROWSER_ENCODINGS}
            return lambda: [self.client.get(arm.path, headers=headers).status_code for _ in range(n)]
        bodies = self.bodies(n, captcha=arm.name == "POST privacy")
        return lambda: [self.client.post(arm.path, body, content_type=FORM_TYPE).status_code for body in bodies]

    def cpu_round(self, arm: Arm, n: int) -> tuple[float, float]:
        """(CPU µs, wall µs) per request over n requests; each must answer as it should and store its row."""
        send = self.requests(arm, n)
        before = rows(arm)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        statuses = send()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        clear_captcha()
        self.check(arm, statuses, before, n)
        return cpu / n * 1e6, wall / n * 1e6

    def check(self, arm: Arm, statuses: list[int], before: int | None, n: int) -> None:
        expected = 302 if arm.method == "POST" else 200
        bad = sorted({s for s in statuses if s != expected})
        after = rows(arm)
        created = None if before is None or after is None else after - before
        if bad or created not in (None, n):
            raise SystemExit(f"bench: in-process {arm.name}: statuses {bad}, {created} rows for {n} requests")

    def work_per_request(self, arm: Arm, n: int = WORK_N) -> Work:
        """Statements by first keyword, write-lock time and rows added by table, per request, over n requests."""
        from django.apps import apps  # noqa: PLC0415
        from django.db import connection  # noqa: PLC0415

        models = apps.get_models()

        def counts() -> dict[str, int]:
            return {m._meta.db_table: m._default_manager.count() for m in models}

        send = self.requests(arm, n)
        before = counts()
        with WriteLockClock(connection) as clock:
            send()
        after = counts()
        clear_captcha()
        added = {t: (after[t] - before[t]) / n for t in after if after[t] != before[t]}
        kinds = {k: v / n for k, v in sorted(clock.kinds.items())}
        return Work(sum(clock.kinds.values()) / n, kinds, clock.held / n * 1e6, added)


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


def median_of(runs: list[Run], arm: str, attribute: str) -> float:
    return statistics.median(getattr(r, attribute) for r in runs if r.arm == arm)


def verdict(arm: Arm, cpu_ratio: float | None, rps_ratio: float | None, cpu_us: float) -> str:
    if arm.cpu_budget_us:
        return f"CPU ≤ {arm.cpu_budget_us / 1000:g} ms: {'met' if cpu_us <= arm.cpu_budget_us else 'NOT met'}"
    if not arm.target or cpu_ratio is None or rps_ratio is None:
        return "reference"
    met = cpu_ratio >= arm.target and rps_ratio >= arm.target
    return f"≥ {arm.target:g}: {'met' if met else 'NOT met'}"


def summary(
    *,
    started: str,
    facts: dict[str, str],
    runs: list[Run],
    cpu: dict[str, list[tuple[float, float]]],
    work: dict[str, Work],
    elapsed: float,
) -> str:
    cpu_median = {name: statistics.median(c for c, _ in rounds) for name, rounds in cpu.items()}
    lines = [
        f"# make bench — piwarden's requests against bare Django references ({started})",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in facts.items()],
        "",
        f"Server: gunicorn {WORKERS} sync workers (`piwarden serve`'s argv), DEBUG off, SQLite WAL in a fresh "
        f"data dir. Load: `wrk -t{THREADS} -c{CONNECTIONS} --timeout 10s`, POSTs {POST_DURATION_S} s after a "
        f"{POST_WARMUP_S} s warm-up, GETs {GET_DURATION_S} s after {GET_WARMUP_S} s, every arm in each of "
        f"{ROUNDS} interleaved rounds; GETs send `Accept-Encoding: {BROWSER_ENCODINGS}`. CAPTCHA on (seeded "
        "challenges for the POSTs), rate limit on (never reached).",
        "",
        "## Per arm",
        "",
        "Ratios compare the reference's cost with the arm's: reference CPU ÷ arm CPU, and arm req/s ÷ reference "
        "req/s (1.0 = as cheap as the reference). req/s, p50 and p99 are medians over the rounds.",
        "",
        "| arm | request | CPU µs/req | req/s | p50 ms | p99 ms | SQL/req | write lock µs/req "
        "| compared with | CPU ratio | req/s ratio | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        rps = median_of(runs, arm.name, "rps")
        cpu_ratio = rps_ratio = None
        if arm.reference:
            cpu_ratio = cpu_median[arm.reference] / cpu_median[arm.name]
            rps_ratio = rps / median_of(runs, arm.reference, "rps")
        w = work[arm.name]
        lines.append(
            f"| {arm.name} | `{arm.method} {arm.path}` | {cpu_median[arm.name]:.0f} | {rps:.1f} "
            f"| {median_of(runs, arm.name, 'p50_ms'):.1f} | {median_of(runs, arm.name, 'p99_ms'):.1f} "
            f"| {w.statements:g} | {w.lock_us:.0f} | {arm.reference or '—'} "
            f"| {'—' if cpu_ratio is None else f'{cpu_ratio:.2f}'} "
            f"| {'—' if rps_ratio is None else f'{rps_ratio:.2f}'} "
            f"| {verdict(arm, cpu_ratio, rps_ratio, cpu_median[arm.name])} |"
        )
    lines += [
        "",
        "## Throughput and latency (server, every run)",
        "",
        "| round | arm | requests | req/s | p50 ms | p90 ms | p99 ms | rows created | non-2xx/3xx | socket errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {r.round} | {r.arm} | {r.requests} | {r.rps:.1f} | {r.p50_ms:.1f} | {r.p90_ms:.1f} | {r.p99_ms:.1f} "
            f"| {'—' if r.rows is None else r.rows} | {r.status_errors} | {r.socket_errors} |"
            for r in sorted(runs, key=lambda r: (ARMS.index(BY_NAME[r.arm]), r.round))
        ],
        "",
        "## CPU time per request (in process, Django test client, CSRF enforced)",
        "",
        "| arm | " + " | ".join(f"round {i + 1} µs" for i in range(CPU_ROUNDS)) + " | median CPU µs | median wall µs |",
        "|---|" + "---|" * (CPU_ROUNDS + 2),
    ]
    for arm in ARMS:
        rounds = cpu[arm.name]
        cells = " | ".join(f"{c:.0f}" for c, _ in rounds)
        wall = statistics.median(w for _, w in rounds)
        lines.append(f"| {arm.name} | {cells} | {cpu_median[arm.name]:.0f} | {wall:.0f} |")
    lines += [
        "",
        f"{CPU_N['POST']} POSTs or {CPU_N['GET']} GETs per arm and round, after {CPU_WARMUP} warm-up requests.",
        "",
        f"## Work per request (in process, averaged over {WORK_N} requests)",
        "",
        "The write lock is timed from `BEGIN IMMEDIATE` (or a write in autocommit) to the end of `COMMIT`; "
        "COMMIT is a driver call, not a statement, so it is not in the counts.",
        "",
        "| arm | SQL statements | by kind | write lock µs | rows added, by table |",
        "|---|---|---|---|---|",
    ]
    for arm in ARMS:
        w = work[arm.name]
        kinds_text = ", ".join(f"{k} {v:g}" for k, v in w.kinds.items()) or "—"
        added_text = ", ".join(f"{t} {v:g}" for t, v in sorted(w.added.items())) or "—"
        lines.append(f"| {arm.name} | {w.statements:g} | {kinds_text} | {w.lock_us:.0f} | {added_text} |")
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
                "- every run: no non-2xx/3xx response, no socket error or timeout; rows created = wrk's completed "
                "requests (+ at most one in flight per connection) for the POSTs and the form's GET (its CAPTCHA "
                "challenge); in process, every request answered 302 (POST) or 200 (GET) and stored its row"
            ]
        ),
        f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; total time {elapsed:.0f} s",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run of the script itself: its figures mean nothing"
    )
    if parser.parse_args().quick:
        global POST_WARMUP_S, POST_DURATION_S, GET_WARMUP_S, GET_DURATION_S, CPU_ROUNDS, CPU_WARMUP  # noqa: PLW0603
        POST_WARMUP_S = POST_DURATION_S = GET_WARMUP_S = GET_DURATION_S = 1
        CPU_ROUNDS, CPU_WARMUP = 1, 5
        CPU_N.update(POST=10, GET=10)
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
            runs.extend(load.measure(arm, round_no) for arm in ARMS)
    finally:
        stop_server(server)

    print("  CPU time per request, in process …", flush=True)
    inproc = InProcess()
    for arm in ARMS:
        inproc.cpu_round(arm, CPU_WARMUP)
    gc.freeze()  # start-up's objects out of the collector's sight, as the server's workers (piwarden/wsgi.py)
    cpu: dict[str, list[tuple[float, float]]] = {arm.name: [] for arm in ARMS}
    for _ in range(CPU_ROUNDS):
        for arm in ARMS:
            cpu[arm.name].append(inproc.cpu_round(arm, CPU_N[arm.method]))
    work = {arm.name: inproc.work_per_request(arm) for arm in ARMS}

    text = summary(started=started, facts=facts, runs=runs, cpu=cpu, work=work, elapsed=time.monotonic() - started_at)
    (out / "summary.md").write_text(text)
    print()
    print(text)
    return 1 if any(r.problems for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
