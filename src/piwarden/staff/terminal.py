"""What the staff account commands (createstaff, changepassword) share: the operator's language
and a new password read from the terminal or a file, never from a pipe."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils.translation import gettext as _


def operator_language() -> str:
    """The operator's language from the terminal's locale (zh_* gives Chinese); English otherwise.

    A command speaks one language throughout: its own lines and Django's password-validator
    messages alike.
    """
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(name, "")
        if value and value not in {"C", "POSIX"} and not value.startswith("C."):
            return "zh-hans" if value.lower().startswith("zh") else "en"
    return "en"


def new_password(path: Path | None, user: User, *, creating: bool) -> str:
    """A password from ``path``, or typed twice at the terminal, that the validators accept for
    ``user``; a refusal says that nothing was created (``creating``) or changed."""
    if path is None and not sys.stdin.isatty():
        # getpass would fall back to reading stdin with a warning (and echo) when there is no
        # terminal: never take a password that way.
        raise CommandError(
            _("No terminal to ask for the password: run this in a terminal, or give --password-file FILE.")
        )
    password = _read(path, creating)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise CommandError(_("Password rejected: %(reasons)s") % {"reasons": " ".join(exc.messages)}) from None
    return password


def _read(path: Path | None, creating: bool) -> str:
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CommandError(_("Cannot read %(path)s: %(reason)s") % {"path": path, "reason": exc.strerror}) from None
    try:
        first = getpass.getpass(_("Password: "))
        second = getpass.getpass(_("Password (again): "))
    except (EOFError, KeyboardInterrupt):
        ended = (
            _("Input ended before a password was entered; nothing was created. Use --password-file FILE.")
            if creating
            else _("Input ended before a password was entered; nothing was changed. Use --password-file FILE.")
        )
        raise CommandError(ended) from None
    if first != second:
        raise CommandError(
            _("The passwords differ; nothing was created.")
            if creating
            else _("The passwords differ; nothing was changed.")
        )
    return first
