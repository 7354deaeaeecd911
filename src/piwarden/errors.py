"""How a database error is told in a log line or a command's output."""

from __future__ import annotations


def describe(exc: BaseException) -> str:
    """The first line of a database error: enough to tell an outage from a bug, never a query."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
