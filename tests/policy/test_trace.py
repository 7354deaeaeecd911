"""`piwarden policy trace`: promise → duty → code → test → last result, from a report a real pytest
run wrote (through the duty-report plugin, under pytest-xdist too), never from a table typed here."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from piwarden.policy.promises import Links, PromiseError, promises_in
from piwarden.policy.trace import Status, as_json, as_markdown, read_report, trace

# A small test module standing for the suite: one test proves RGT-09 and passes, one proves
# RGT-08 and fails, one is marked with a duty no promise below has, one is skipped.
SUITE = """
import pytest

@pytest.mark.duty("RGT-09")
@pytest.mark.parametrize("day", [1, 2])
def test_due_date(day):
    assert day

@pytest.mark.duty("RGT-08")
def test_refusal_gives_reasons():
    assert False, "no reasons given"

@pytest.mark.duty("SEC-01")
def test_something_else():
    pass

@pytest.mark.duty("CON-04")
def test_withdrawal():
    pytest.skip("not here")

def test_unmarked():
    pass
"""

# P-64 (RGT-09): the answer within 15 working days; P-66 (RGT-08): refusals with reasons;
# P-58 (CON-04 RET-02): withdrawal; P-44 (SEC-01): encryption; P-47: access reviews, no test.
LINKS = {
    "P-64": Links(("piwarden.rights.clock.due_date",), ("test_suite.py::test_due_date",)),
    "P-66": Links(("piwarden.rights.actions.refuse_request",), ("test_suite.py::test_refusal_gives_reasons",)),
    "P-58": Links((), ("test_suite.py::test_withdrawal",)),
    "P-44": Links((), ("test_suite.py::test_something_else", "test_suite.py::test_gone")),
    "P-53": Links((), ("test_suite.py::test_unmarked",)),
    "P-51": Links((), ("test_suite.py::test_something_else",)),  # passed, but marked SEC-01, not RGT-02
}


PYTEST = [sys.executable, "-m", "pytest", "-p", "piwarden.testing", "-p", "no:django", "-p", "no:cacheprovider"]
PYTEST += ["-o", "markers=duty(id): a legal duty"]


def run_suite(tmp_path: Path, *extra: str) -> Path:
    """Run SUITE in a pytest of its own with the plugin, as `make test` does; the JSON it wrote."""
    (tmp_path / "test_suite.py").write_text(SUITE, encoding="utf-8")
    report = tmp_path / "var" / "duty-report.json"
    result = subprocess.run(  # noqa: S603  # our own interpreter and fixed arguments
        [*PYTEST, "--duty-json", str(report), "-q", *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr  # one test fails on purpose
    return report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_suite(tmp_path_factory.mktemp("suite"))


def test_the_plugin_writes_each_marked_test_once_with_its_duties_and_outcome(report: Path):
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written["format"] == "piwarden-duty-report/1"
    assert written["exitstatus"] == 1
    assert {t["nodeid"]: (t["duties"], t["outcome"]) for t in written["tests"]} == {
        "test_suite.py::test_due_date[1]": (["RGT-09"], "passed"),
        "test_suite.py::test_due_date[2]": (["RGT-09"], "passed"),
        "test_suite.py::test_refusal_gives_reasons": (["RGT-08"], "failed"),
        "test_suite.py::test_something_else": (["SEC-01"], "passed"),
        "test_suite.py::test_withdrawal": (["CON-04"], "skipped"),
    }


def test_under_xdist_the_controller_merges_every_workers_results(tmp_path: Path, report: Path):
    merged = run_suite(tmp_path, "-n", "2")
    tests = lambda path: json.loads(path.read_text(encoding="utf-8"))["tests"]  # noqa: E731
    assert sorted(map(str, tests(merged))) == sorted(map(str, tests(report)))
    assert not list(tmp_path.glob("var/*.partial"))


def test_the_trace_links_only_tests_marked_with_the_promises_duties(report: Path):
    found = {t.promise.id: t for t in trace("en", read_report(report), LINKS).promises}
    assert found["P-64"].status is Status.KEPT
    assert [(r.nodeid, r.outcome) for r in found["P-64"].results] == [
        ("test_suite.py::test_due_date[1]", "passed"),
        ("test_suite.py::test_due_date[2]", "passed"),
    ]
    assert found["P-66"].status is Status.FAILING
    assert found["P-58"].status is Status.UNKEPT  # its only test was skipped
    assert found["P-44"].status is Status.KEPT
    assert ("test_suite.py::test_gone", "not run") in [(r.nodeid, r.outcome) for r in found["P-44"].results]
    assert found["P-53"].status is Status.UNKEPT  # named, but absent from the report: not run
    assert found["P-51"].status is Status.UNKEPT  # passed, but proves another duty
    assert not found["P-51"].results[0].counts
    assert found["P-47"].status is Status.UNKEPT  # nothing named
    assert found["P-47"].results == ()


def test_the_markdown_lists_the_unkept_first_and_each_chain(report: Path):
    with translation.override("en"):
        text = as_markdown(trace("en", read_report(report), LINKS))
    unkept, every = text.split("## Every promise")
    assert "## Unkept promises" in unkept
    assert "**P-66** (RGT-08, failing)" in unkept
    assert "**P-47** (SEC-02, unkept): Regular reviews:" in unkept
    assert "P-64" not in unkept
    assert "exit status 1" in text
    chain = every.split("### P-64: kept")[1].split("###")[0]
    assert "We will respond within 15 working days" in chain
    assert "RGT-09" in chain
    assert "`piwarden.rights.clock.due_date`" in chain
    assert "`test_suite.py::test_due_date[2]`: passed" in chain
    assert "not marked with these duties: does not count" in every.split("### P-51")[1].split("###")[0]


def test_the_markdown_speaks_chinese_for_the_chinese_text(report: Path):
    with translation.override("zh-hans"):
        text = as_markdown(trace("zh-hans", read_report(report), LINKS))
    assert "## 未兑现的承诺" in text
    assert "### P-64: 已兑现" in text
    assert "个工作日内答复" in text


def test_the_json_holds_the_same_chain(report: Path):
    data = as_json(trace("en", read_report(report), LINKS))
    assert data["report"]["exitstatus"] == 1
    by_id = {p["id"]: p for p in data["promises"]}
    assert by_id["P-64"]["status"] == "kept"
    assert by_id["P-64"]["duties"] == ["RGT-09"]
    assert by_id["P-64"]["code"] == ["piwarden.rights.clock.due_date"]
    assert by_id["P-66"]["tests"] == [
        {
            "nodeid": "test_suite.py::test_refusal_gives_reasons",
            "duties": ["RGT-08"],
            "outcome": "failed",
            "counts": True,
        }
    ]
    assert set(data["summary"]["unkept"]) == {p["id"] for p in data["promises"] if p["status"] != "kept"}
    assert data["summary"]["kept"] == 2


def run(*args: str) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("policy", "trace", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue() + str(exc), 1
    return out.getvalue(), 0


def test_the_command_exits_zero_by_default_and_one_with_strict_when_a_promise_is_unkept(report: Path, tmp_path: Path):
    text, status = run("--report", str(report), "--language", "en")
    assert status == 0
    assert text.startswith("# Promises of the privacy policy, traced")
    assert "**P-47**" in text  # access reviews: no code, no test
    text, status = run("--report", str(report), "--strict")
    assert status == 1
    assert "promise(s) unkept: P-" in text
    assert "P-47" in text.rsplit("unkept:", 1)[1]


def test_strict_passes_when_every_promise_is_kept(tmp_path: Path, settings):
    """Every named test passed and is marked with its promise's duties: nothing unkept, exit 0."""
    promises = promises_in("zh-hans")
    tests = [{"nodeid": f"t.py::test_{p.id[2:]}", "duties": [p.duties[0]], "outcome": "passed"} for p in promises]
    links = "\n".join(f'[[promises]]\nid = "{p.id}"\ncode = []\ntests = ["t.py::test_{p.id[2:]}"]\n' for p in promises)
    (tmp_path / "promises.toml").write_text(links, encoding="utf-8")
    shutil.copytree(Path(settings.POLICY_DIR) / "texts", tmp_path / "texts")
    shutil.copy(Path(settings.POLICY_DIR) / "declaration.toml", tmp_path / "declaration.toml")
    settings.POLICY_DIR = tmp_path
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"format": "piwarden-duty-report/1", "exitstatus": 0, "tests": tests}))
    text, status = run("--report", str(report), "--strict", "--json")
    assert status == 0, text
    assert json.loads(text)["summary"]["unkept"] == []


def test_without_a_report_every_promise_is_unkept_and_the_command_says_how_to_get_one(tmp_path: Path):
    text, status = run("--report", str(tmp_path / "none.json"), "--language", "en")
    assert status == 0
    assert "No test report yet: run make test" in text
    data = json.loads(run("--report", str(tmp_path / "none.json"), "--json")[0])
    assert data["report"] is None
    assert data["summary"]["kept"] == 0


@pytest.mark.parametrize("content", ["not json", '{"format": "other", "tests": []}', "[]"])
def test_a_file_that_is_not_a_report_is_refused(tmp_path: Path, content: str):
    path = tmp_path / "report.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PromiseError, match="not a duty report"):
        read_report(path)
    text, status = run("--report", str(path))
    assert status == 1
    assert "not a duty report" in text


def test_make_test_keeps_the_report_where_the_trace_reads_it(settings):
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text(encoding="utf-8")
    [args] = [line for line in makefile.splitlines() if line.startswith("PYTEST_ARGS ?=")]
    assert " -n 2 " in f"{args} "  # xdist: the controller merges the workers' results (test above)
    [written] = [arg.split("=", 1)[1] for arg in args.split() if arg.startswith("--duty-json=")]
    root = Path(__file__).resolve().parents[2]  # make runs in the source tree
    assert (root / written).resolve() == Path(settings.PIWARDEN_DUTY_REPORT)
