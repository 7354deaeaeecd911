"""promise → duty → code → test → last result, for the privacy officer and an auditor.

The promises and their duties come from the privacy texts, the code and tests from
``policy/promises.toml``, the results from the last test run's duty report (``make test``
writes it: ``--duty-json``, :mod:`piwarden.testing`).  A named test counts for a promise only
if the report shows it marked with one of the promise's duties, so a link cannot be made by the
map alone.  A promise is kept when a counting test passed in that run and none failed; any
other promise is unkept, and the trace says so rather than guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import pgettext, pgettext_lazy

from piwarden.policy.promises import Links, Promise, PromiseError, load_links, promises_in

UNKEPT_PROMISES = pgettext_lazy("promise trace", "Unkept promises")
NONE = pgettext_lazy("promise trace", "None.")
EVERY_PROMISE = pgettext_lazy("promise trace", "Every promise")
DUTIES = pgettext_lazy("promise trace", "Duties")
CODE = pgettext_lazy("promise trace", "Code")
TESTS = pgettext_lazy("promise trace", "Tests")
NONE_NAMED = pgettext_lazy("promise trace", "none named")
REPORT_FORMAT = "piwarden-duty-report/1"  # piwarden.testing.DUTY_REPORT_FORMAT (not imported: it sets test env vars)


class Status(StrEnum):
    KEPT = "kept"
    FAILING = "failing"  # a test that proves it failed in the last run
    UNKEPT = "unkept"  # no test that proves it passed in the last run

    @property
    def label(self) -> str:
        return {
            Status.KEPT: pgettext("promise trace", "kept"),
            Status.FAILING: pgettext("promise trace", "failing"),
            Status.UNKEPT: pgettext("promise trace", "unkept"),
        }[self]


@dataclass(frozen=True)
class Result:
    nodeid: str
    duties: tuple[str, ...]
    outcome: str  # passed, failed, skipped; "not run" when the report does not hold the test
    counts: bool  # marked with one of the promise's duties


@dataclass(frozen=True)
class DutyReport:
    path: Path
    finished_at: str
    exitstatus: int
    outcomes: dict[str, tuple[tuple[str, ...], str]]  # nodeid → (duties, outcome)


@dataclass(frozen=True)
class Traced:
    promise: Promise
    code: tuple[str, ...]
    results: tuple[Result, ...]
    status: Status

    @property
    def kept(self) -> bool:
        return self.status is Status.KEPT


@dataclass(frozen=True)
class Trace:
    language: str
    report: DutyReport | None
    promises: tuple[Traced, ...]

    @property
    def unkept(self) -> list[Traced]:
        return [t for t in self.promises if not t.kept]


def default_report_path() -> Path:
    return Path(settings.PIWARDEN_DUTY_REPORT)


def read_report(path: Path) -> DutyReport | None:
    """The last run's results; None when there is none yet; PromiseError when it is not a report."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PromiseError(f"{path}: not a duty report: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != REPORT_FORMAT or not isinstance(raw.get("tests"), list):
        raise PromiseError(f"{path}: not a duty report (format {REPORT_FORMAT})")
    outcomes = {str(t["nodeid"]): (tuple(str(d) for d in t["duties"]), str(t["outcome"])) for t in raw["tests"]}
    return DutyReport(path, str(raw.get("finished_at", "")), int(raw.get("exitstatus", -1)), outcomes)


def trace(language: str, report: DutyReport | None, links: dict[str, Links] | None = None) -> Trace:
    links = load_links() if links is None else links
    traced = []
    for promise in promises_in(language):
        named = links.get(promise.id, Links((), ()))
        results = tuple(r for test in named.tests for r in _results(test, promise, report))
        traced.append(Traced(promise, named.code, results, _status(results)))
    return Trace(language, report, tuple(traced))


def _results(test: str, promise: Promise, report: DutyReport | None) -> list[Result]:
    found = [
        Result(nodeid, duties, outcome, bool(set(duties) & set(promise.duties)))
        for nodeid, (duties, outcome) in (report.outcomes.items() if report else ())
        if nodeid == test or nodeid.startswith(test + "[")
    ]
    return found or [Result(test, (), "not run", counts=False)]


def _status(results: tuple[Result, ...]) -> Status:
    outcomes = {r.outcome for r in results if r.counts}
    if "failed" in outcomes:
        return Status.FAILING
    return Status.KEPT if "passed" in outcomes else Status.UNKEPT


def as_json(found: Trace) -> dict[str, Any]:
    report = found.report
    return {
        "language": found.language,
        "report": None
        if report is None
        else {"path": str(report.path), "finished_at": report.finished_at, "exitstatus": report.exitstatus},
        "summary": {
            "promises": len(found.promises),
            "kept": len(found.promises) - len(found.unkept),
            "unkept": [t.promise.id for t in found.unkept],
        },
        "promises": [
            {
                "id": t.promise.id,
                "text": t.promise.text,
                "duties": list(t.promise.duties),
                "code": list(t.code),
                "tests": [
                    {"nodeid": r.nodeid, "duties": list(r.duties), "outcome": r.outcome, "counts": r.counts}
                    for r in t.results
                ],
                "status": t.status.value,
            }
            for t in found.promises
        ],
    }


def as_markdown(found: Trace) -> str:
    """For an auditor: the unkept promises first, then every promise with its chain."""
    lines = [f"# {_('Promises of the privacy policy, traced')}", ""]
    if found.report is None:
        lines.append(_("No test report yet: run make test, which keeps it."))
    else:
        lines.append(
            _("Results of the test run finished at %(at)s (exit status %(status)s), read from %(path)s.")
            % {"at": found.report.finished_at, "status": found.report.exitstatus, "path": found.report.path}
        )
    counts = {
        "total": len(found.promises),
        "kept": len(found.promises) - len(found.unkept),
        "unkept": len(found.unkept),
    }
    lines += ["", _("%(total)s promises: %(kept)s kept, %(unkept)s unkept.") % counts, ""]
    lines += [f"## {UNKEPT_PROMISES}", ""]
    for t in found.unkept:
        lines.append(f"- **{t.promise.id}** ({' '.join(t.promise.duties)}, {t.status.label}): {t.promise.text}")
    if not found.unkept:
        lines.append(str(NONE))
    lines += ["", f"## {EVERY_PROMISE}", ""]
    for t in found.promises:
        lines += [f"### {t.promise.id}: {t.status.label}", "", f"> {t.promise.text}", ""]
        lines.append(f"- {DUTIES}: {', '.join(t.promise.duties)}")
        lines.append(f"- {CODE}: {', '.join(f'`{c}`' for c in t.code) or NONE_NAMED}")
        lines.append(f"- {TESTS}:{'' if t.results else ' ' + NONE_NAMED}")
        for r in t.results:
            uncounted = not r.counts and r.outcome != "not run"
            note = f" ({_('not marked with these duties: does not count')})" if uncounted else ""
            lines.append(f"  - `{r.nodeid}`: {_outcome(r.outcome)}{note}")
        lines.append("")
    return "\n".join(lines)


def _outcome(outcome: str) -> str:
    return {
        "passed": pgettext("promise trace", "passed"),
        "failed": pgettext("promise trace", "failed"),
        "skipped": pgettext("promise trace", "skipped"),
        "not run": pgettext("promise trace", "not run"),
    }.get(outcome, outcome)
