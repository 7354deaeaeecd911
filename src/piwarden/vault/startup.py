"""Where start-up asks the key check (``piwarden.vault.keycheck``) before anything runs.

Kept apart from ``keycheck`` because ``piwarden.cli`` imports it before Django is set up,
when no model may be imported yet.
"""

from __future__ import annotations

import django
from django.db import connections

# Commands that never read or write personal data, or that check the keys themselves (`keys`,
# `serve` through `keys init`, `check --deploy`).  Every other command, including ones added
# later, must pass the key check before it runs: failing closed is the default.
KEY_FREE_COMMANDS = frozenset(
    {
        "check",
        "collectstatic",
        "compilemessages",
        "createcachetable",
        "dbshell",
        "diffsettings",
        "findstatic",
        "help",
        "inspectdb",
        "keys",
        "makemessages",
        "makemigrations",
        "migrate",
        "optimizemigration",
        "policy",
        "serve",
        "showmigrations",
        "sqlflush",
        "sqlmigrate",
        "sqlsequencereset",
        "squashmigrations",
        "startapp",
        "startproject",
        "version",
    }
)


def touches_personal_data(argv: list[str]) -> bool:
    """Whether ``piwarden COMMAND …`` may read or write personal data (everything not key-free)."""
    name = argv[1] if len(argv) > 1 else ""
    return not (not name or name.startswith("-") or name in KEY_FREE_COMMANDS or {"-h", "--help"} & set(argv[2:]))


def refuse_command_without_keys(argv: list[str]) -> None:
    """For ``piwarden COMMAND``: raise :class:`KeysRefused` before a command that needs keys runs without them."""
    if not touches_personal_data(argv):
        return
    django.setup()
    from piwarden.vault.keycheck import verify_keys  # noqa: PLC0415  # needs the app registry set up just above

    try:
        verify_keys(missing_ok_when_empty=True)
    finally:
        connections.close_all()


def refuse_to_serve_without_keys() -> None:
    """For the WSGI application: no worker serves a request without the database's keys."""
    from piwarden.vault.keycheck import verify_keys  # noqa: PLC0415  # see refuse_command_without_keys

    try:
        verify_keys()
    finally:
        # A server that loads the application before forking must not hand this connection to its workers.
        connections.close_all()
