"""Compare the declaration with the models: every personal field declared, every declared field stored.

``piwarden policy check`` prints the result; the system check framework runs
it at start-up and in the test suite, so an undeclared field cannot ship.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.db import models

from piwarden.policy.declaration import Declaration
from piwarden.vault.fields import BlindIndexField, EncryptedTextField

PROJECT_PREFIX = "piwarden."


@dataclass
class InventoryReport:
    undeclared: list[str] = field(default_factory=list)
    unstored: list[str] = field(default_factory=list)
    unencrypted: list[str] = field(default_factory=list)
    misfiled: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return (
            [f"{p}: stores data but is not declared (add it to a category or to non_personal)" for p in self.undeclared]
            + [f"{p}: is declared but no model stores it" for p in self.unstored]
            + [
                f"{p}: is in an encrypted category but is not an encrypted or blind-index field"
                for p in self.unencrypted
            ]
            + [f"{p}: is an encrypted field but is declared non_personal" for p in self.misfiled]
        )


def _model_fields() -> dict[str, models.Field]:  # type: ignore[type-arg]  # any field type
    found: dict[str, models.Field] = {}  # type: ignore[type-arg]  # any field type
    for config in apps.get_app_configs():
        if not config.name.startswith(PROJECT_PREFIX):
            continue
        for model in config.get_models():
            for f in model._meta.concrete_fields:
                if f.primary_key or f.is_relation:
                    continue  # identifiers and links: covered by the rows they point to
                found[f"{config.label}.{model.__name__}.{f.name}"] = f
    return found


def inspect_inventory(declaration: Declaration) -> InventoryReport:
    report = InventoryReport()
    stored = _model_fields()
    declared_personal = {path: c for c in declaration.categories for path in c.fields}
    non_personal = set(declaration.non_personal.fields)
    for path, model_field in sorted(stored.items()):
        category = declared_personal.get(path)
        protected = isinstance(model_field, EncryptedTextField | BlindIndexField)
        if category is None and path not in non_personal:
            report.undeclared.append(path)
        elif category is not None and category.encrypted and not protected:
            report.unencrypted.append(path)
        elif path in non_personal and protected:
            report.misfiled.append(path)
    for path in sorted(set(declared_personal) | non_personal):
        if path not in stored:
            report.unstored.append(path)
    return report
