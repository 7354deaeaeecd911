"""Test support shipped with the package (loaded by pytest with ``-p piwarden.testing``).

Sets the environment *before* pytest-django imports the settings: a private
data directory per run (keys, SQLite test database, outbox), the CAPTCHA's
test mode, and a rate limit loose enough for the suite (the rate-limit test
tightens it itself).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
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
os.environ.setdefault("PIWARDEN_RISK_HARDER_CAPTCHA", "10000")
os.environ.setdefault("PIWARDEN_RISK_BLOCK", "20000")
os.environ.setdefault("PIWARDEN_RISK_CAPTCHA_FAILURES", "10000/h")
os.environ.setdefault("PIWARDEN_HTTPS", "off")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


# --- the duty report: legal duty → test → result, for an auditor -------------------------
#
# Tests that prove a legal duty carry ``@pytest.mark.duty("ID")`` (ids from the team's
# law.md).  ``pytest --duty-report=PATH`` writes the table duty → test → outcome as Markdown;
# ``--duty-json=PATH`` writes the same results for a machine (``piwarden policy trace`` reads it).
# The ids travel as user_properties, so the controller of a pytest-xdist run hears every
# worker's results through its own pytest_runtest_logreport; only the controller writes.

DUTY_REPORT_FORMAT = "piwarden-duty-report/1"

_duty_results: dict[tuple[str, str], str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--duty-report", metavar="PATH", default=None, help="write the legal duty → test → result table to PATH"
    )
    parser.addoption(
        "--duty-json", metavar="PATH", default=None, help="write the duty-marked tests' results to PATH as JSON"
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
        if _duty_results.get(key) in (None, "passed"):  # a failed teardown after a passed call fails the test
            _duty_results[key] = report.outcome


def pytest_terminal_summary(terminalreporter: object, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not _duty_results:  # an xdist worker: the controller writes
        return
    write = getattr(terminalreporter, "write_line", print)
    duties = {duty for duty, _ in _duty_results}
    tests = {nodeid for _, nodeid in _duty_results}
    if path := config.getoption("--duty-report"):
        _write(Path(path), _markdown(duties))
        write(f"duty report: {len(duties)} duties proven by {len(tests)} tests -> {path}")
    if path := config.getoption("--duty-json"):
        _write(Path(path), json.dumps(_machine_readable(int(exitstatus)), ensure_ascii=False, indent=1) + "\n")
        write(f"duty report (JSON): {len(tests)} tests -> {path}")


def _markdown(duties: set[str]) -> str:
    lines = ["# Legal duties proven by tests", "", "| duty | test | result |", "|---|---|---|"]
    for (duty, nodeid), outcome in sorted(_duty_results.items()):
        lines.append(f"| {duty} | `{nodeid}` | {outcome} |")
    failing = sorted({duty for (duty, _), outcome in _duty_results.items() if outcome == "failed"})
    lines += ["", f"{len(duties)} duties, {len(_duty_results)} tests; failing: {', '.join(failing) or 'none'}", ""]
    return "\n".join(lines)


def _machine_readable(exitstatus: int) -> dict[str, object]:
    duties_of: dict[str, list[str]] = {}
    outcome_of: dict[str, str] = {}
    for (duty, nodeid), outcome in sorted(_duty_results.items()):
        duties_of.setdefault(nodeid, []).append(duty)
        outcome_of[nodeid] = outcome  # one outcome per test: every duty of a test hears the same reports
    return {
        "format": DUTY_REPORT_FORMAT,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "exitstatus": exitstatus,
        "tests": [{"nodeid": n, "duties": d, "outcome": outcome_of[n]} for n, d in sorted(duties_of.items())],
    }


def _write(path: Path, text: str) -> None:
    """Whole or not at all: the back office may read the report while a run writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
