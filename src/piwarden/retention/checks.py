"""The system check of RET-01: every declared category has a retention rule (swept, elsewhere or kept)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from piwarden.people.registry import Keeps, handlers
from piwarden.policy.declaration import load_declaration
from piwarden.retention.rules import problems


# Tagged "policy" too: `piwarden policy check` runs it, like the registry's coverage check.
@register(Tags.models, "policy")
def check_retention_rules(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    declaration = load_declaration()
    found: list[CheckMessage] = [Error(problem, id="retention.E001") for problem in problems(declaration)]
    registered = handlers()
    # RET-04: a network log is kept on a deletion request (restricted to security), never deleted early.
    for category in declaration.categories:
        handler = registered.get(category.id)
        if category.network_log and handler is not None and not isinstance(handler.erase, Keeps):
            found.append(
                Error(
                    f"category {category.id!r} is a network log: its eraser must keep it (Keeps), not delete it",
                    id="retention.E002",
                )
            )
    return found
