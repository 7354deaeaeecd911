"""Running one function in two threads at once, each with its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def at_once[T](work: Callable[[], T], *, threads: int = 2) -> list[T]:
    """Run ``work`` in ``threads`` threads released together (as that many server processes would
    be); return what each returned, and raise the first failure in the calling thread."""
    barrier = threading.Barrier(threads)
    results: list[T] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(work())
        except BaseException as exc:  # noqa: BLE001  # reported to the calling thread below
            failures.append(exc)
        finally:
            connection.close()

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=60)
    if failures:
        raise failures[0]
    assert len(results) == threads, "a thread did not finish in time"
    return results
