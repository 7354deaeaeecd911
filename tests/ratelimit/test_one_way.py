"""A request over a rate is counted and refused one way: ``ratelimit.refusals.count_and_refuse``."""

from __future__ import annotations

import ast
from pathlib import Path

import piwarden

SOURCE = Path(piwarden.__file__).parent


def _callers_of(name: str) -> set[str]:
    found = set()
    for source in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Call):
                called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if called == name:
                    found.add(str(source.relative_to(SOURCE)))
    return found


def test_only_the_one_function_records_a_refusal_over_a_rate():
    # The CAPTCHA rule counts wrong answers but refuses on the day's counter: its own call.
    assert _callers_of("refusal_for") == {"ratelimit/refusals.py", "security/risk.py"}
    assert _callers_of("hit") == set()  # the decorator counts through count_and_refuse too
