"""The ``piwarden`` command: Django's manage.py plus the project's own commands.

Configuration mistakes, and a database that has not been migrated yet, end in one clear line
(and exit status 2), not a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "piwarden.settings")
    from django.core.exceptions import ImproperlyConfigured  # noqa: PLC0415  # settings module must be chosen first
    from django.core.management import execute_from_command_line  # noqa: PLC0415  # idem
    from django.db import DatabaseError  # noqa: PLC0415  # idem

    from piwarden.policy.declaration import DeclarationError  # noqa: PLC0415  # idem
    from piwarden.vault.keys import VaultUnavailable  # noqa: PLC0415  # idem
    from piwarden.vault.startup import refuse_command_without_keys  # noqa: PLC0415  # idem

    argv = argv if argv is not None else sys.argv
    try:
        if argv[1:2] in (["migrate"], ["serve"]):
            _make_data_dir()  # the commands that create a fresh installation, before any check runs
        refuse_command_without_keys(argv)  # commands that may touch personal data need the database's keys
        execute_from_command_line(argv)
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"piwarden: configuration error: {exc}\n")
        sys.exit(2)
    except DeclarationError as exc:
        sys.stderr.write(f"piwarden: the privacy-policy declaration cannot be used:\n{exc}\n")
        sys.exit(2)
    except VaultUnavailable as exc:
        sys.stderr.write(f"piwarden: {exc}\n")
        sys.exit(2)
    except DatabaseError:
        problem = unmigrated_database()
        if problem is None:
            raise
        sys.stderr.write(f"piwarden: {problem}\n")
        sys.exit(2)


def _make_data_dir() -> None:
    from django.conf import settings  # noqa: PLC0415  # settings module chosen in main()

    Path(settings.DATA_DIR).mkdir(mode=0o700, parents=True, exist_ok=True)


def unmigrated_database() -> str | None:
    """One line saying the database is missing or not migrated, and what to run; None otherwise."""
    from django.db import DatabaseError, connection  # noqa: PLC0415  # Django is set up by now
    from django.db.migrations.executor import MigrationExecutor  # noqa: PLC0415  # idem

    run = "run: piwarden migrate  (piwarden serve and make run migrate too)"
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite":
        if not Path(name).exists():  # checked before connecting, which would create an empty file
            return f"the database {name} does not exist yet; {run}"
        where = name
    else:
        where = f"{name} on {connection.settings_dict.get('HOST') or 'localhost'}"
    try:
        connection.close()  # the failed command may have left it unusable
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return None  # not a migration problem: let the original error speak
    if not pending:
        return None
    return f"the database {where} has not been migrated ({len(pending)} migrations to apply); {run}"


if __name__ == "__main__":
    main()
