"""Shared fixtures: keys, personas, a consultation submitter, a real SMTP server, staff with TOTP, Chromium."""

from __future__ import annotations

import fcntl
import gettext
import io
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.files.storage import storages
from django.core.management import call_command
from django.test import Client
from django.utils.translation import trans_real
from django_otp.oath import totp
from pytest_django.live_server_helper import LiveServer

from piwarden.cessation.state import forget as forget_cessation_standing
from piwarden.policy.declaration import load_declaration
from piwarden.policy.versions import forget as forget_versions
from piwarden.security.device import forget_period_keys
from piwarden.staff.actions import record_training
from piwarden.staff.models import Authenticator
from piwarden.staff.training import today as training_today
from piwarden.vault.crypto import forget_cached_keys
from piwarden.vault.keys import get_provider, reset_provider
from tests.smtp import SMTPServer

STAFF_PASSWORD = "correct horse battery staple 42"


@pytest.fixture(scope="session", autouse=True)
def _keys() -> None:
    reset_provider()
    get_provider().initialise()  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _audit_export(settings: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own export file of audit checkpoints (the database is emptied between tests;
    a file shared between them would name runs of an earlier test's log), commands it runs too."""
    path = tmp_path_factory.mktemp("audit") / "checkpoints.jsonl"
    settings.PIWARDEN_AUDIT_CHECKPOINTS = path
    monkeypatch.setenv("PIWARDEN_AUDIT_CHECKPOINTS", str(path))


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> Iterator[None]:
    forget_cached_keys()
    forget_period_keys()  # the security events' month key: its row goes with the test's database
    yield
    forget_cached_keys()
    forget_period_keys()


@pytest.fixture(autouse=True)
def _fresh_cessation_standing() -> Iterator[None]:
    """Each test reads the site's cessation from its own database: the per-process copy
    (piwarden.cessation.state) is forgotten, since a rolled-back test never commits its forgetting."""
    forget_cessation_standing()
    yield
    forget_cessation_standing()


@pytest.fixture(scope="session", autouse=True)
def _compiled_translations() -> None:
    """Compile the zh_Hans catalogue if the .mo is missing or older than the .po, as `make messages` does."""
    po = Path(settings.LOCALE_PATHS[0]) / "zh_Hans" / "LC_MESSAGES" / "django.po"
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.fail("msgfmt (GNU gettext) is needed to compile the translations; install gettext")
    partial = mo.with_name(f"django.mo.{os.getpid()}.tmp")
    subprocess.run([msgfmt, "--check", f"--output-file={partial}", str(po)], check=True)  # noqa: S603  # fixed argv
    partial.replace(mo)  # atomic: a parallel worker never reads a half-written catalogue
    gettext._translations.clear()  # type: ignore[attr-defined]  # stdlib cache keyed by .mo path
    trans_real._translations = {}
    trans_real._default = None


@pytest.fixture(scope="session", autouse=True)
def _collected_static() -> None:
    """The static files as `piwarden serve` collects them: hashed names, .gz and .br copies, a manifest.

    Pages name their CSS by the manifest, so the suite runs against the storage production uses.
    Once per test run: the xdist workers share the data directory, and the first one collects.
    """
    root = Path(settings.STATIC_ROOT)
    root.parent.mkdir(parents=True, exist_ok=True)
    with (root.parent / "collectstatic.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "staticfiles.json").exists():
            call_command("collectstatic", interactive=False, verbosity=0)
    # This worker's storage reads the manifest again, from the files collected now: one built before
    # they were (while another worker was still collecting) would keep an empty manifest for the run.
    storage = storages["staticfiles"]
    storage.hashed_files, storage.manifest_hash = storage.load_manifest()
    staticfiles_storage.url("piwarden/site.css")  # fails here, in one line, if the manifest is incomplete


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last, wherever their module sits (tests/accounts/ comes before tests/audit/).

    They leave the session's live server thread and Playwright's event loop running in the worker,
    and the audit log's verification forks its SQLite workers only from a single-threaded process
    (``audit.chain``): its tests, and any other that counts threads, must run before them.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)  # stable: order kept within


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """pytest-django's live server, with the static files served as production serves them.

    pytest-django puts Django's StaticFilesHandler in front, which serves the apps' own files by
    their plain names; the pages name the collected, hashed files, which the site's WhiteNoise
    serves.  So nothing is put in front here.
    """
    address = request.config.getvalue("liveserver") or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS") or "localhost"
    server = LiveServer(address, start=False)
    server.thread.static_handler = lambda handler: handler
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _forget_policy_versions() -> Iterator[None]:
    """What a process remembers of the published versions (the notice, parsed declarations) is per test."""
    forget_versions()
    yield
    forget_versions()


@pytest.fixture
def declared(settings: Any, tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """Make a text the declaration in force for this test; the real one is back afterwards."""
    from tests.policy.test_declaration import policy_dir  # noqa: PLC0415  # a test module: loaded only when used

    def _use(text: str) -> None:
        settings.POLICY_DIR = policy_dir(tmp_path, text)
        load_declaration.cache_clear()

    yield _use
    load_declaration.cache_clear()


@pytest.fixture
def smtp(settings: Any) -> Iterator[SMTPServer]:
    """A real SMTP server on 127.0.0.1 that ``MAILERS["default"]`` sends to (the ``PIWARDEN_EMAIL=smtp`` path)."""
    server = SMTPServer()
    server.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": server.port, "timeout": 5},
        }
    }
    yield server
    server.stop()


def consultation_data(**overrides: Any) -> dict[str, str]:
    """A valid form body (CAPTCHA test mode accepts 'PASSED')."""
    data = {
        "name": "张伟",
        "phone": "13800138000",
        "email": "zhang.wei@example.com",
        "company": "示例科技有限公司",
        "industry": "finance",
        "position": "信息安全经理",
        "region": "CN",
        "product": "data",
        "consent": "on",
        "age_confirmed": "on",
        "submission_token": str(uuid.uuid4()),
        "captcha_0": "test-hashkey",
        "captcha_1": "PASSED",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def submit(client: Client) -> Any:
    def _submit(language: str = "zh-hans", **overrides: Any) -> Any:
        url = "/en/consultation/" if language == "en" else "/consultation/"
        return client.post(url, consultation_data(**overrides))

    return _submit


def make_staff(username: str, role: str, tmp_path: Path, email: str = "", *, trained: bool = True) -> User:
    """A staff member as createstaff makes one; ``trained``: with a data-protection training
    attestation completed today, as every persona whose role reveals personal data needs."""
    secret = tmp_path / f"{username}.pw"
    secret.write_text(STAFF_PASSWORD)
    call_command("createstaff", username, role=role, email=email, password_file=secret, stdout=io.StringIO())
    user = User.objects.get(username=username)
    if trained:
        record_training(user, course="Data protection basics", completed_on=training_today(), recorded_by=None)
    return user


def current_code(user: User) -> str:
    """The code the user's authenticator app shows now; if that one is spent, the next step's.

    The server refuses a code of a step it has already accepted (no replay) and accepts the next
    step's code, so a persona can sign in twice within 30 seconds, as a person could by waiting.
    """
    device = Authenticator.objects.get(user=user)
    now = int(time.time() - device.T0) // device.STEP + device.drift
    ahead = max(0, device.last_t + 1 - now)
    return f"{totp(device.bin_key, device.STEP, device.T0, device.DIGITS, device.drift + ahead):06d}"


def sign_in(client: Client, user: User) -> Any:
    return client.post(
        "/backoffice/login/",
        {"username": user.username, "password": STAFF_PASSWORD, "otp_token": current_code(user)},
    )


@pytest.fixture
def assign(db: None, tmp_path: Path) -> Callable[[str, User], None]:
    """Give a consultation request to a staff member as the console does: the privacy officer
    (``olivia``, made on first use) signs in and posts the assignment.  Sales see only theirs."""

    def _assign(reference: str, to: User) -> None:
        officer = User.objects.filter(username="olivia").first() or make_staff("olivia", "privacy_officer", tmp_path)
        client = Client()
        assert sign_in(client, officer).status_code == 302  # a redirect: signed in
        response = client.post(f"/backoffice/inquiries/{reference}/assign/", {"assignee": to.pk})
        assert response.status_code == 302, response.content.decode()[:500]

    return _assign


@pytest.fixture
def alice(db: None, tmp_path: Path) -> User:
    """Sales consultant: may reveal consultation details to answer them."""
    return make_staff("alice", "sales", tmp_path)


@pytest.fixture
def bob(db: None, tmp_path: Path) -> User:
    """Security auditor: reads the audit log, never personal data."""
    return make_staff("bob", "auditor", tmp_path)


@pytest.fixture
def carol(db: None, tmp_path: Path) -> User:
    """Privacy officer."""
    return make_staff("carol", "privacy_officer", tmp_path)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM", "/usr/bin/chromium"),
        "args": [
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def data_dir() -> Path:
    return Path(settings.DATA_DIR)
