"""piwarden changepassword USERNAME: a staff member's new password, recorded in the audit log.

Replaces Django's own command, which changes the password without a trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation
from django.utils.translation import gettext as _

from piwarden.staff.actions import change_staff_password
from piwarden.staff.terminal import new_password, operator_language


class Command(BaseCommand):
    help = (
        "Give a staff account a new password: every session of theirs ends, and the change is recorded in the "
        "audit log. Asks for the password on the terminal, or reads it from --password-file. Speaks Chinese "
        "when the terminal's locale (LANG) is zh_*, English otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password-file", type=Path, help="read the password from this file (else prompt)")
        parser.add_argument("--database", help="ignored: piwarden has one database")  # Django's own option

    def handle(self, *args: Any, **options: Any) -> None:
        with translation.override(operator_language()):
            username: str = options["username"]
            user = User.objects.filter(username=username, is_staff=True).first()
            if user is None:
                raise CommandError(_("No staff account is named “%(username)s”.") % {"username": username})
            change_staff_password(user, new_password(options["password_file"], user, creating=False))
            self.stdout.write(
                _("The password of “%(username)s” is changed; their sessions have ended.") % {"username": username}
            )
