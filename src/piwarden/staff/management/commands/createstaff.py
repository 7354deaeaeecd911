"""piwarden createstaff USERNAME --role ROLE"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import qrcode
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation
from django.utils.translation import gettext as _

from piwarden.policy.declaration import load_declaration
from piwarden.staff.actions import create_staff
from piwarden.staff.terminal import new_password, operator_language


class Command(BaseCommand):
    help = (
        "Create a staff account with a role from the policy declaration and a TOTP authenticator. "
        "Prints the otpauth:// link and a QR code to scan; sign-in needs password + 6-digit code. "
        "Asks for the password on the terminal, or reads it from --password-file. "
        "Speaks Chinese when the terminal's locale (LANG) is zh_*, English otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        roles = [r.id for r in load_declaration().roles]
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=roles)
        parser.add_argument("--email", default="")
        parser.add_argument("--password-file", type=Path, help="read the password from this file (else prompt)")

    def handle(self, *args: Any, **options: Any) -> None:
        with translation.override(operator_language()):
            self._create(options)

    def _create(self, options: dict[str, Any]) -> None:
        username: str = options["username"]
        # The database first: a name already taken, or a database never migrated (`piwarden` says so
        # in one line), is said before anyone is asked for a password.
        if User.objects.filter(username=username).exists():
            raise CommandError(_("A user named “%(username)s” already exists.") % {"username": username})
        password = new_password(
            options["password_file"], User(username=username, email=options["email"]), creating=True
        )
        new = create_staff(username=username, email=options["email"], password=password, role=options["role"])
        url = new.authenticator.config_url
        self.stdout.write(
            _("Created staff “%(username)s” with the role “%(role)s”.") % {"username": username, **options}
        )
        self.stdout.write(_("Add this to an authenticator app (TOTP, 6 digits, 30 s):"))
        self.stdout.write(url)
        qr = qrcode.QRCode(border=1)
        qr.add_data(url)
        out = io.StringIO()
        qr.print_ascii(out=out, invert=True)
        self.stdout.write(out.getvalue())
        self.stdout.write(_("Then sign in at /backoffice/login/ with the password and the current code."))
