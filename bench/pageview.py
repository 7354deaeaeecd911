"""The overhead of recording a page view on a public page (issue 9, benchmark; target ≤ 5 %).

    .venv/bin/python bench/pageview.py [--requests 250] [--rounds 60] [--people 250] [--flushes 40] [--only-flush]

In one process, through Django's whole WSGI stack (every middleware, the view, the response
closed as a server closes it, so the bulk write after the response runs too), the same signed-in
person asks for the same public page in two arms that differ only in their cookie choice:

* **recorded**: analytics allowed: each view is kept (``browsing.note``) and written in bulk, 250 at
  a time, in one INSERT after the response that made the batch due — its cost is in the figures;
* **not recorded**: analytics refused (functional allowed): the same middleware asks the same
  question and keeps nothing.

The arms alternate in short blocks (``--requests`` requests of one arm, then of the other,
``--rounds`` times), so that a shared machine's changing load falls on both alike.  The overhead
is the ratio of the medians of the blocks' CPU time per request, within the run.  A last line
times the recording alone (``browsing.note`` and the bulk write, amortised), outside any request.  The
person is set on the request by a bench-only middleware, as the accounts middleware will set it;
the page is the home page (stored once and served from memory: the cheapest page, so the
largest relative overhead) and ``/downloads/`` (rendered every time).

One person's views make one gate decision per flush, whatever the flush costs per person; the
last line times a full batch (``browsing.BATCH`` views) from ``--people`` signed-in people, the
flush alone, in CPU and wall clock (on SQLite the flush holds the one write lock), with the
statements it ran.  ``--only-flush`` skips the page arms.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchenv import configure

PERSON_ID = ""


class SetPerson:
    """Bench-only: what the accounts middleware will do for a signed-in holder."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from piwarden.people.models import person_by_id  # noqa: PLC0415

        # One SELECT per request, as the accounts middleware reads the signed-in account: so both
        # arms have the request's database connection, as a signed-in request always has.
        request.visitor_person = person_by_id(PERSON_ID)
        return self.get_response(request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=250, help="requests per block")
    parser.add_argument("--rounds", type=int, default=60, help="blocks per arm, interleaved")
    parser.add_argument("--people", type=int, default=250, help="signed-in people the last flushes' views come from")
    parser.add_argument("--flushes", type=int, default=40, help="flushes of a full batch from --people people")
    parser.add_argument("--only-flush", action="store_true", help="skip the page arms: the flushes alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="piwarden-bench-pageview-") as tmp:
        configure(Path(tmp))
        run(args.requests, 0 if args.only_flush else args.rounds, args.people, args.flushes)


def run(requests: int, rounds: int, people: int, flushes: int) -> None:  # noqa: PLR0915  # one readable script
    global PERSON_ID  # noqa: PLW0603
    import django  # noqa: PLC0415  # only after configure()
    from django.core.management import call_command  # noqa: PLC0415

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("keys", "init", stdout=io.StringIO())
    call_command("collectstatic", interactive=False, verbosity=0)

    from django.conf import settings  # noqa: PLC0415
    from django.core.handlers.wsgi import WSGIHandler  # noqa: PLC0415
    from django.db import connection, transaction  # noqa: PLC0415
    from django.http import HttpResponse  # noqa: PLC0415

    from piwarden.consent.cookies import COOKIE_NAME, CookieChoice, set_choice_cookie  # noqa: PLC0415
    from piwarden.downloads import browsing  # noqa: PLC0415
    from piwarden.downloads.models import PageView  # noqa: PLC0415
    from piwarden.people.actions import find_or_create_person  # noqa: PLC0415
    from piwarden.policy.declaration import load_declaration  # noqa: PLC0415

    with transaction.atomic():
        PERSON_ID = str(find_or_create_person(email="bench.visitor@example.com").pk)
    sys.modules.setdefault("bench_pageview", sys.modules[__name__])
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index("piwarden.downloads.middleware.PageViewMiddleware"), "bench_pageview.SetPerson")
    settings.MIDDLEWARE = middleware
    handler = WSGIHandler()

    def cookie(analytics: bool) -> str:
        response = HttpResponse()
        choice = CookieChoice("0123456789abcdef0123456789abcdef", load_declaration().cookies_version, True, analytics)
        set_choice_cookie(response, choice)
        return f"{COOKIE_NAME}={response.cookies[COOKIE_NAME].value}"

    def environ(path: str, analytics: bool) -> dict[str, Any]:
        return {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_COOKIE": cookie(analytics),
            "HTTP_ACCEPT_ENCODING": "gzip",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
        }

    def ask(env: dict[str, Any]) -> None:
        status: list[str] = []
        body = handler({**env, "wsgi.input": io.BytesIO()}, lambda s, h, *a: status.append(s))
        for _ in body:
            pass
        body.close()  # as the server does: request_finished, and the bulk write when due
        assert status[0].startswith("200"), status

    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"backend: {connection.vendor}; load average before: {os.getloadavg()[0]:.2f}"
    )
    for path in ("/", "/downloads/") if rounds else ():
        arms = {"recorded": environ(path, True), "not recorded": environ(path, False)}
        for env in arms.values():
            for _ in range(200):
                ask(env)  # warm: the stored page, the compiled templates, the cookie's HMAC
        browsing.flush()
        before = PageView.objects.count()
        cpu: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(rounds):
            for name, env in arms.items():  # blocks of the two arms interleaved: the load drifts alike
                start = time.process_time()
                for _ in range(requests):
                    ask(env)
                cpu[name].append((time.process_time() - start) / requests * 1e6)
        browsing.flush()
        written = PageView.objects.count() - before
        assert written == rounds * requests, (written, rounds * requests)  # every recorded view was written
        on, off = statistics.median(cpu["recorded"]), statistics.median(cpu["not recorded"])
        spread = {name: (round(min(v)), round(max(v))) for name, v in cpu.items()}
        print(
            f"{path}: recorded {on:.0f} µs, not recorded {off:.0f} µs CPU per request (median of {rounds} "
            f"blocks of {requests}); overhead {100 * (on / off - 1):+.1f} % "
            f"({'met' if on / off <= 1.05 else 'NOT met'}: ≤ 5 %); blocks min-max {spread}; {written} views written"
        )
    if rounds:
        alone(browsing, requests * rounds)
    many(browsing, PageView, people, flushes)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def alone(browsing: Any, views: int) -> None:
    """The recording by itself: note each view, write each batch as it falls due."""
    import uuid  # noqa: PLC0415

    from django.utils import timezone  # noqa: PLC0415

    person = uuid.UUID(PERSON_ID)
    start = time.process_time()
    for _ in range(views):
        browsing.note(person, "/", timezone.now())
        if browsing._due:  # what request_finished checks
            browsing.flush()
    browsing.flush()
    print(f"recording alone: {(time.process_time() - start) / views * 1e6:.1f} µs CPU per view ({views} views)")


def many(browsing: Any, page_view: Any, people: int, flushes: int) -> None:
    """A full batch from ``people`` signed-in people: one flush, timed alone (CPU and wall clock:
    on SQLite the flush holds the one write lock from its first write to its commit)."""
    import uuid  # noqa: PLC0415

    from django.db import connection, transaction  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    from piwarden.people.actions import find_or_create_person  # noqa: PLC0415

    with transaction.atomic():
        ids = [uuid.UUID(str(find_or_create_person(email=f"bench.{i}@example.com").pk)) for i in range(people)]
    cpu: list[float] = []
    wall: list[float] = []
    statements: list[int] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements[-1] += 1
        return execute(sql, params, many, context)

    for round_ in range(flushes + 3):
        now = timezone.now()
        for i in range(browsing.BATCH):
            browsing.note(ids[i % people], "/", now)
        before = page_view.objects.count()
        statements.append(0)
        with connection.execute_wrapper(count):
            start, start_wall = time.process_time(), time.perf_counter()
            browsing.flush()
            spent, spent_wall = time.process_time() - start, time.perf_counter() - start_wall
        assert page_view.objects.count() - before == browsing.BATCH
        if round_ >= 3:  # the first flushes warm the statements and the caches
            cpu.append(spent * 1e3)
            wall.append(spent_wall * 1e3)
    print(
        f"flush of {browsing.BATCH} views from {people} people: {statistics.median(cpu):.1f} ms CPU, "
        f"{statistics.median(wall):.1f} ms wall (medians of {flushes}; wall min-max "
        f"{min(wall):.1f}-{max(wall):.1f}); {statements[-1]} statements; "
        f"{statistics.median(cpu) / browsing.BATCH * 1e3:.1f} µs CPU per view"
    )


if __name__ == "__main__":
    main()
