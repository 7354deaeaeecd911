"""The system check of invariant 8: every declared category has an exporter and an eraser."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register  # noqa: A004  # Django's name

from piwarden.people.registry import coverage_problems
from piwarden.policy.declaration import load_declaration
from piwarden.vault.keycheck import database_ready


# Tagged "policy" too: `piwarden policy check` runs the checks of that tag, so that policy/ (the
# declaration alone) need not import the apps that add rules to it.
@register(Tags.models, "policy")
def check_exporters_and_erasers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [Error(problem, id="piwarden.E003") for problem in coverage_problems(load_declaration())]


# Deploy-only, like the key check: it reads the whole ledger and queries the database.
@register(Tags.security, deploy=True)
def check_erasure_ledger(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The ledger names persons the database has not erased (a restore), or the reverse (invariant 6)."""
    from piwarden.people import ledger  # noqa: PLC0415  # imports the Person model: not while apps load

    if not database_ready():
        return []
    message = ledger.warning()
    return [] if message is None else [Warning(message, id="people.W001")]
