"""piwarden createstaff USERNAME --role ROLE"""

from __future__ import annotations

import getpass
import io
from pathlib import Path
from typing import Any

import qrcode
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from piwarden.audit.log import EventType, record_event
from piwarden.policy.declaration import load_declaration


class Command(BaseCommand):
    help = (
        "Create a staff account with a role from the policy declaration and a TOTP authenticator. "
        "Prints the otpauth:// link and a QR code to scan; sign-in needs password + 6-digit code."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        roles = [r.id for r in load_declaration().roles]
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=roles)
        parser.add_argument("--email", default="")
        parser.add_argument("--password-file", type=Path, help="read the password from this file (else prompt)")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        if User.objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} already exists.")
        password = self._password(options["password_file"])
        candidate = User(username=username, email=options["email"])
        try:
            validate_password(password, candidate)
        except ValidationError as exc:
            raise CommandError("Password rejected: " + " ".join(exc.messages)) from None
        with transaction.atomic():
            user = User.objects.create_user(username, options["email"], password, is_staff=True)
            group, _ = Group.objects.get_or_create(name=options["role"])
            user.groups.add(group)
            device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
            record_event(EventType.STAFF_CREATED, extra={"username": username, "role": options["role"]})
        self.stdout.write(f"Created staff {username!r} with role {options['role']!r}.")
        self.stdout.write("Add this to an authenticator app (TOTP, 6 digits, 30 s):")
        self.stdout.write(device.config_url)
        qr = qrcode.QRCode(border=1)
        qr.add_data(device.config_url)
        out = io.StringIO()
        qr.print_ascii(out=out, invert=True)
        self.stdout.write(out.getvalue())
        self.stdout.write("Then sign in at /backoffice/login/ with the password and the current code.")

    def _password(self, path: Path | None) -> str:
        if path is not None:
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords differ.")
        return first
