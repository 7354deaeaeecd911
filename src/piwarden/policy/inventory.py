"""Compare the declaration with what the code stores: every place that holds data declared.

``piwarden policy check`` prints the result; the system check framework runs
it at start-up and in the test suite, so an undeclared field cannot ship.

What counts as stored
---------------------
* Every concrete field of every model of every installed app: piwarden's own,
  and Django's and the libraries' (staff accounts in ``auth``, lockout records
  in ``axes``, sessions, CAPTCHA challenges, OTP devices, queued tasks).  A
  library's table holds people's data as surely as ours, and a new library
  brings new tables: the check makes that a decision, not an accident.
* Every file store an app names on its AppConfig (``piwarden.policy.stores``),
  such as the sealed e-mail outbox.

Primary keys and relations are left out.  A key or a foreign key carries no
value of its own: it says "this row belongs to that one", and it is personal
exactly when the rows it joins are; both rows are declared, so the link is
covered by them (an audit event's ``actor`` by the staff account it names, a
TOTP device's ``user`` likewise).  Many-to-many tables (a staff member's
groups) are made of relations only and are covered the same way.

An app that must never run in production (``make bench``'s plaintext baseline)
may opt out with ``privacy_inventory_exempt = "<why>"`` on its AppConfig; the
command prints every exemption, so it cannot hide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import AppConfig, apps
from django.db import models

from piwarden.policy.declaration import Declaration
from piwarden.policy.stores import FileStore
from piwarden.vault.fields import BlindIndexField, EncryptedTextField


@dataclass
class InventoryReport:
    undeclared: list[str] = field(default_factory=list)
    unstored: list[str] = field(default_factory=list)
    unencrypted: list[str] = field(default_factory=list)
    misfiled: list[str] = field(default_factory=list)
    exempt: dict[str, str] = field(default_factory=dict)  # app label -> reason

    @property
    def problems(self) -> list[str]:
        return (
            [f"{p}: stores data but is not declared (add it to a category or to non_personal)" for p in self.undeclared]
            + [f"{p}: is declared but no model or file store holds it" for p in self.unstored]
            + [
                f"{p}: is in an encrypted category but is not an encrypted field, blind index or sealed file store"
                for p in self.unencrypted
            ]
            + [f"{p}: is an encrypted field or sealed file store but is declared non_personal" for p in self.misfiled]
        )


def _exemption(config: AppConfig) -> str | None:
    reason = getattr(config, "privacy_inventory_exempt", None)
    return str(reason) if reason else None


def _model_fields() -> dict[str, models.Field]:  # type: ignore[type-arg]  # any field type
    found: dict[str, models.Field] = {}  # type: ignore[type-arg]  # any field type
    for config in apps.get_app_configs():
        if _exemption(config):
            continue
        for model in config.get_models():
            for f in model._meta.concrete_fields:
                if f.primary_key or f.is_relation:
                    continue  # identifiers and links: covered by the rows they join (module docstring)
                found[f"{config.label}.{model.__name__}.{f.name}"] = f
    return found


def file_stores() -> dict[str, FileStore]:
    """Every file store of the installed apps, by its declared path ("vault:outbox")."""
    found: dict[str, FileStore] = {}
    for config in apps.get_app_configs():
        if _exemption(config):
            continue
        for store in getattr(config, "file_stores", ()):
            found[f"{config.label}:{store.name}"] = store
    return found


def inspect_inventory(declaration: Declaration) -> InventoryReport:
    report = InventoryReport(
        exempt={c.label: reason for c in apps.get_app_configs() if (reason := _exemption(c)) is not None}
    )
    # Each place: its declared path -> whether the code encrypts what it holds.
    stored = {path: isinstance(f, EncryptedTextField | BlindIndexField) for path, f in _model_fields().items()}
    stored |= {path: store.sealed for path, store in file_stores().items()}
    declared_personal = {path: c for c in declaration.categories for path in (*c.fields, *c.files)}
    non_personal = {*declaration.non_personal_fields, *declaration.non_personal_files}
    for path, protected in sorted(stored.items()):
        category = declared_personal.get(path)
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
