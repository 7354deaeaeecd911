"""A real `piwarden serve` for the fault tests: start it, post the consultation form to it over
HTTP from several threads, find its processes, and inspect what it stored.

Nothing here imports the site's code into the test process: the site runs in its own processes
against its own data directory (and database), exactly as `make run` starts it, and what it
stored is read back by a `piwarden shell` in that same environment.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WAIT_SECONDS = 120
START_SECONDS = 300  # migrating a fresh database on a loaded 2-core machine took 80 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll until ``condition()`` is truthy; fail naming ``what`` (a deadline, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def operator_env(data_dir: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment an operator would start the site with (none of the test run's own settings)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIWARDEN_", "DJANGO_", "EMAIL_")) and k not in {"DATABASE_URL", "SECRET_KEY", "PORT"}
    }
    env |= {
        "PIWARDEN_DATA_DIR": str(data_dir),
        "PORT": str(port),
        "PIWARDEN_CAPTCHA_TEST_MODE": "on",  # the form accepts the CAPTCHA answer "PASSED"
        "PIWARDEN_CONSULTATION_RATE": "100000/m",
        # Load from one address is the test, not an attack: the risk rules (piwarden.security) stay out of it.
        "PIWARDEN_RISK_HARDER_CAPTCHA": "1000000",
        "PIWARDEN_RISK_BLOCK": "2000000",
        "PIWARDEN_HTTPS": "off",
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    return env


@dataclass
class Site:
    """A running `piwarden serve`."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    csrf: tuple[str, str] = ("", "")

    @property
    def port(self) -> int:
        return int(self.env["PORT"])

    def start(self, *args: str) -> Site:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  # our own command
                [sys.executable, "-m", "piwarden", "serve", "--workers", "2", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(lambda: self.get("/").status == 200, "the site to answer", timeout=START_SECONDS)
        self.csrf = self.csrf_token()
        return self

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C
        try:
            return self.process.wait(timeout=60)
        finally:
            # Whatever is left (nothing, if serve did its job) must not outlive the test.
            for pid in descendants(self.process.pid):
                os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            connection.request(method, path, body=body.encode(), headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode())
        finally:
            connection.close()

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def csrf_token(self) -> tuple[str, str]:
        page = self.get("/consultation/")
        cookie = re.search(r"csrftoken=([^;]+)", page.headers.get("set-cookie", ""))
        field_ = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
        assert cookie, page.status
        assert field_, page.status
        return cookie[1], field_[1]

    def post_consultation(self, token: str, *, language: str = "zh-hans") -> Answer:
        cookie, csrf = self.csrf
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
            "captcha_0": "test-hashkey",
            "captcha_1": "PASSED",
        }
        return self.request(
            "POST",
            "/en/consultation/" if language == "en" else "/consultation/",
            urllib.parse.urlencode(form),
            {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie}"},
        )

    def inspect(self) -> dict[str, Any]:
        """What the site stored, read through its own code in its own environment."""
        result = subprocess.run(  # noqa: S603  # our own command
            [sys.executable, "-m", "piwarden", "shell", "-c", INSPECT],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# Run inside the site's environment by `piwarden shell -c`: every inquiry whole (its seven
# fields decrypt, its consent, its audit event and its two queued tasks exist), no person without
# an inquiry, and the audit chain verifying.
INSPECT = """
import json
from django.db.models import Count
from django_tasks_db.models import DBTaskResult
from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent, EventType
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry, PERSONAL_FIELDS
from piwarden.people.models import Person
partial = []
tasks = {}
for row in DBTaskResult.objects.values_list("args_kwargs", flat=True):
    key = row["args"][0] if row["args"] else None
    tasks[key] = tasks.get(key, 0) + 1
events = AuditEvent.objects.filter(event_type=EventType.INQUIRY_SUBMITTED)
submitted = {extra["inquiry"] for extra in events.values_list("extra", flat=True)}
consented = set(ConsentRecord.objects.values_list("person_id", flat=True))
tokens, acknowledged = [], []
for inquiry in Inquiry.objects.select_related("person"):
    values = [getattr(inquiry, name) for name in PERSONAL_FIELDS]
    if not all(values) or inquiry.name != "张伟":
        partial.append(f"{inquiry.reference}: fields {values!r}")
    if inquiry.reference not in submitted:
        partial.append(f"{inquiry.reference}: no audit event")
    if inquiry.person_id not in consented:
        partial.append(f"{inquiry.reference}: no consent")
    if tasks.get(str(inquiry.pk), 0) < 2:
        partial.append(f"{inquiry.reference}: tasks {tasks.get(str(inquiry.pk), 0)}")
    tokens.append(str(inquiry.submission_token))
    if inquiry.acknowledged_at is not None:
        acknowledged.append(str(inquiry.submission_token))
orphans = Person.objects.filter(inquiries__isnull=True).count()
if orphans:
    partial.append(f"{orphans} people without an inquiry")
broken = verify_chain()
print(json.dumps({
    "tokens": tokens,
    "acknowledged": acknowledged,
    "partial": partial,
    "chain_breaks_at": None if broken is None else broken.pk,
    "tasks": dict(DBTaskResult.objects.values_list("status").annotate(Count("id")).order_by()),
}))
"""


@dataclass
class Load:
    """Threads posting the consultation form until stopped; every answer is kept."""

    site: Site
    threads: int = 3
    answers: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)  # (token, status, headers)
    errors: list[str] = field(default_factory=list)  # connection refused or reset: no answer at all
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            thread = threading.Thread(target=self._post, daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=30)

    def _post(self) -> None:
        while not self._stop.is_set():
            token = str(uuid.uuid4())
            try:
                answer = self.site.post_consultation(token)
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.errors.append(type(exc).__name__)
                time.sleep(0.05)
                continue
            with self._lock:
                self.answers.append((token, answer.status, answer.headers))
            if answer.status != 302:
                time.sleep(0.05)

    def count(self, status: int) -> int:
        with self._lock:
            return sum(1 for _, s, _ in self.answers if s == status)

    def acknowledged(self) -> set[str]:
        """Tokens the site answered with the redirect to the "received" page."""
        with self._lock:
            return {token for token, status, headers in self.answers if status == 302 and "ref=" in headers["location"]}

    def statuses(self) -> set[int]:
        with self._lock:
            return {status for _, status, _ in self.answers}


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def worker_pid(site: Site) -> int | None:
    assert site.process is not None
    for pid in descendants(site.process.pid):
        if " piwarden worker" in command_line(pid) and parent_of(pid) == site.process.pid:
            return pid
    return None


def gunicorn_pids(site: Site) -> tuple[int | None, list[int]]:
    """gunicorn's master (a child of serve) and its workers."""
    assert site.process is not None
    master = None
    for pid in descendants(site.process.pid):
        if "gunicorn" in command_line(pid) and parent_of(pid) == site.process.pid:
            master = pid
    if master is None:
        return None, []
    return master, [pid for pid in descendants(master) if parent_of(pid) == master]


def assert_whole(site: Site, acknowledged: set[str]) -> dict[str, Any]:
    """Every acknowledged request stored, no partial rows, the audit chain verifying."""
    stored = site.inspect()
    assert not (acknowledged - set(stored["tokens"])), "an acknowledged request was lost"
    assert stored["partial"] == []
    assert stored["chain_breaks_at"] is None
    return stored
