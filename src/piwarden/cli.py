"""The ``piwarden`` command: Django's manage.py plus the project's own commands.

Configuration mistakes end in one clear line (and exit status 2), not a traceback.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "piwarden.settings")
    from django.core.exceptions import ImproperlyConfigured  # noqa: PLC0415  # settings module must be chosen first
    from django.core.management import execute_from_command_line  # noqa: PLC0415  # idem

    from piwarden.policy.declaration import DeclarationError  # noqa: PLC0415  # idem
    from piwarden.vault.keys import VaultUnavailable  # noqa: PLC0415  # idem
    from piwarden.vault.startup import refuse_command_without_keys  # noqa: PLC0415  # idem

    argv = argv if argv is not None else sys.argv
    try:
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


if __name__ == "__main__":
    main()
