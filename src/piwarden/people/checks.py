"""The system check of invariant 8: every declared category has an exporter and an eraser."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from piwarden.people.registry import coverage_problems
from piwarden.policy.declaration import load_declaration


# Tagged "policy" too: `piwarden policy check` runs the checks of that tag, so that policy/ (the
# declaration alone) need not import the apps that add rules to it.
@register(Tags.models, "policy")
def check_exporters_and_erasers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [Error(problem, id="piwarden.E003") for problem in coverage_problems(load_declaration())]
