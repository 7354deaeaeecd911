"""Test support shipped with the package (loaded by pytest with ``-p piwarden.testing``).

Sets the environment *before* pytest-django imports the settings: a private
data directory per run (keys, SQLite test database, outbox), the CAPTCHA's
test mode, and a rate limit loose enough for the suite (the rate-limit test
tightens it itself).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

if "PIWARDEN_DATA_DIR" not in os.environ or os.environ.get("PIWARDEN_TEST_RUN") != "1":
    os.environ["PIWARDEN_DATA_DIR"] = tempfile.mkdtemp(prefix="piwarden-test-")
os.environ["PIWARDEN_TEST_RUN"] = "1"  # xdist workers inherit the controller's directory
os.environ.setdefault("PIWARDEN_CAPTCHA_TEST_MODE", "on")
os.environ.setdefault("PIWARDEN_CONSULTATION_RATE", "10000/m")
os.environ.setdefault("PIWARDEN_RIGHTS_RATE", "10000/m")
os.environ.setdefault("PIWARDEN_RIGHTS_MAIL_RATE", "10000/h")
os.environ.setdefault("PIWARDEN_API_RATE", "10000/h")
os.environ.setdefault("PIWARDEN_HTTPS", "off")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


# --- the duty report: legal duty → test → result, for an auditor -------------------------
#
# Tests that prove a legal duty carry ``@pytest.mark.duty("ID")`` (ids from the team's
# law.md).  ``pytest --duty-report=PATH`` writes the table duty → test → outcome as Markdown.
# The ids travel as user_properties so that the table is complete under pytest-xdist too.

_duty_results: dict[tuple[str, str], str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--duty-report", metavar="PATH", default=None, help="write the legal duty → test → result table to PATH"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in item.iter_markers("duty"):
            item.user_properties.append(("duty", str(marker.args[0])))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    duties = [str(value) for key, value in report.user_properties if key == "duty"]
    if not duties or (report.when != "call" and report.passed):
        return
    for duty in duties:
        key = (duty, report.nodeid)
        if _duty_results.get(key) in (None, "passed"):
            _duty_results[key] = report.outcome


def pytest_terminal_summary(terminalreporter: object, exitstatus: int, config: pytest.Config) -> None:
    path = config.getoption("--duty-report")
    if not path or not _duty_results:
        return
    lines = ["# Legal duties proven by tests", "", "| duty | test | result |", "|---|---|---|"]
    for (duty, nodeid), outcome in sorted(_duty_results.items()):
        lines.append(f"| {duty} | `{nodeid}` | {outcome} |")
    duties = {duty for duty, _ in _duty_results}
    failing = sorted({duty for (duty, _), outcome in _duty_results.items() if outcome == "failed"})
    lines += ["", f"{len(duties)} duties, {len(_duty_results)} tests; failing: {', '.join(failing) or 'none'}", ""]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines), encoding="utf-8")
    write = getattr(terminalreporter, "write_line", print)
    write(f"duty report: {len(duties)} duties proven by {len(_duty_results)} tests -> {path}")
