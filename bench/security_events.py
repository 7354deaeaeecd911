"""What the security events and the risk rules cost the consultation POST (issue 9 §6).

One process, one database, the same POST through Django's test client with CSRF enforced, the
CAPTCHA on with real challenges (``bench/consultation.py``'s in-process arm), in two arms:

* ``with``: the code as it runs — the risk rules' day counter (one upsert) before the form, and the
  request's security event (IP address and user agent sealed under the month's key, the device
  signature, one INSERT) after the submission;
* ``without``: the same POST with those two calls replaced by nothing (``piwarden.site.views``'s
  names rebound in this process only): the consultation POST as it was before them.

Arms interleaved (with, without, without, with, …) after a warm-up, so that the machine's load
falls on both alike; each round sends N POSTs, each must answer 302 and store its request.  The
figures are the median round's CPU and wall time per POST, their ratio (with / without) and the
overhead, and the SQL statements per POST of each arm.  Results go to
``bench/results/security-<timestamp>/summary.md``.

    .venv/bin/python bench/security_events.py [--rounds 6] [--n 150] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import consultation as base  # noqa: E402  # bench/consultation.py: its environment and in-process client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds per arm (interleaved)")
    parser.add_argument("--n", type=int, default=150, help="POSTs per round")
    parser.add_argument("--quick", action="store_true", help="a smoke run of the script: its figures mean nothing")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.n = 2, 10
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    out = BENCH_DIR / "results" / f"security-{started}"
    out.mkdir(parents=True)
    base.configure(out / "data")
    # The risk rules stay in the request path but never ask more or refuse (as the rate limit's).
    os.environ.update({"PIWARDEN_RISK_HARDER_CAPTCHA": "100000000", "PIWARDEN_RISK_BLOCK": "100000000"})
    facts = base.machine()
    base.prepare()

    from django.db import connection  # noqa: PLC0415  # after django.setup()
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    from piwarden.security.risk import Risk  # noqa: PLC0415
    from piwarden.site import views  # noqa: PLC0415

    real = (views.assess_submission, views.record_security_event)

    def arm(name: str) -> None:
        if name == "with":
            views.assess_submission, views.record_security_event = real
        else:
            views.assess_submission = lambda request, scope: Risk(harder=False, refused=None)
            views.record_security_event = lambda *a, **k: None

    post = base.ARMS[0]
    assert post.name == "POST privacy", post
    client = base.InProcess()
    for name in ("with", "without"):
        arm(name)
        client.cpu_round(post, 30 if not args.quick else 5)
    gc.freeze()  # as the server's workers do (piwarden/wsgi.py)

    rounds: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
    order = ["with", "without", "without", "with"]
    for i in range(args.rounds * 2):
        name = order[i % 4]
        arm(name)
        rounds[name].append(client.cpu_round(post, args.n))
        print(f"  {name:8} round {len(rounds[name])}: {rounds[name][-1][0]:7.0f} µs CPU", flush=True)

    statements: dict[str, float] = {}
    for name in ("with", "without"):
        arm(name)
        send = client.requests(post, 20)
        with CaptureQueriesContext(connection) as queries:
            send()
        statements[name] = len(queries.captured_queries) / 20
    arm("with")

    text = summary(started, args, facts, rounds, statements)
    (out / "summary.md").write_text(text)
    print()
    print(text)
    return 0


def summary(
    started: str,
    args: argparse.Namespace,
    facts: dict[str, str],
    rounds: dict[str, list[tuple[float, float]]],
    statements: dict[str, float],
) -> str:
    def median(name: str, index: int) -> float:
        return statistics.median(r[index] for r in rounds[name])

    cpu_with, cpu_without = median("with", 0), median("without", 0)
    wall_with, wall_without = median("with", 1), median("without", 1)
    lines = [
        f"# Security events on the consultation POST — run `{started}`",
        "",
        f"Command: `.venv/bin/python bench/security_events.py --rounds {args.rounds} --n {args.n}`"
        + (" --quick (figures mean nothing)" if args.quick else ""),
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in facts.items()],
        f"| load average at end | {' '.join(f'{x:.2f}' for x in os.getloadavg())} |",
        "",
        "| arm | CPU µs / POST (median round) | wall µs / POST | rounds (CPU µs) | statements / POST |",
        "|---|---|---|---|---|",
        *[
            f"| {name} | {median(name, 0):.0f} | {median(name, 1):.0f} | "
            f"{', '.join(f'{r[0]:.0f}' for r in rounds[name])} | {statements[name]:.1f} |"
            for name in ("with", "without")
        ],
        "",
        f"CPU ratio with / without: **{cpu_with / cpu_without:.3f}** "
        f"(overhead {cpu_with - cpu_without:+.0f} µs, {100 * (cpu_with / cpu_without - 1):+.1f} %); "
        f"wall ratio {wall_with / wall_without:.3f} ({100 * (wall_with / wall_without - 1):+.1f} %).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    started_at = time.monotonic()
    code = main()
    print(f"({time.monotonic() - started_at:.0f} s)")
    sys.exit(code)
