"""One periodic job's loop, for the commands that run now and then every ``--every`` seconds
(``rights remind``, ``audit monitor``, ``staff periodic``), as ``piwarden serve`` starts them.

Run once (``every`` is None): a database that is down is an error (exit 1).  Run in a loop: it is
said on stderr and tried again next time, each round on fresh connections; SIGTERM or Ctrl-C ends
the loop between rounds.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from django.core.management.base import CommandError, OutputWrapper
from django.db import DatabaseError

from piwarden.errors import describe as describe_error


def repeat[T](
    name: str,
    every: int | None,
    job: Callable[[], T],
    report: Callable[[T], str],
    notable: Callable[[T], bool],
    *,
    stdout: OutputWrapper,
    stderr: OutputWrapper,
) -> None:
    """Run ``job`` once, or every ``every`` seconds until stopped; ``report`` its result on
    stdout when run once, and in the loop only when ``notable``."""
    from piwarden.site.management.commands.worker import drop_connections  # noqa: PLC0415  # a command module

    if every is not None and every < 1:
        raise CommandError("--every: a whole number of seconds, at least 1.", returncode=2)
    stopping = threading.Event()
    if every is not None:
        signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
        signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    while True:
        try:
            result = job()
        except DatabaseError as exc:
            if every is None:
                raise CommandError(f"{name}: database unavailable ({describe_error(exc)})") from None
            stderr.write(f"{name}: database unavailable ({describe_error(exc)}); trying again later")
        else:
            if every is None or notable(result):
                stdout.write(report(result))
        if every is None:
            return
        drop_connections()
        if stopping.wait(every):
            return
