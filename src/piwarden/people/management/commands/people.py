"""piwarden people restrict REFERENCE --request TEXT --by USERNAME | lift REFERENCE --reason TEXT --by USERNAME"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from piwarden.people.actions import lift_reason, lift_restriction, restrict_processing
from piwarden.people.models import Person

REFERENCE_LENGTH = 10


def find_person(reference: str) -> Person:
    """The person with this reference (``Person.reference``: the last 10 hex digits of their id)."""
    text = reference.strip().lower()
    if len(text) != REFERENCE_LENGTH or any(c not in "0123456789abcdef" for c in text):
        raise CommandError(f"{reference!r} is not a person's reference (10 characters, 0-9 and A-F).", returncode=2)
    found = list(Person.objects.filter(id__iendswith=text)[:2])
    if not found:
        raise CommandError(f"No person has the reference {reference.upper()}.")
    if len(found) > 1:
        raise CommandError(f"More than one person has the reference {reference.upper()}; ask the developers.")
    return found[0]


def staff(username: str) -> User:
    user = User.objects.filter(username=username, is_staff=True, is_active=True).first()
    if user is None:
        raise CommandError(f"No active staff account is named {username!r}.", returncode=2)
    return user


class Command(BaseCommand):
    help = (
        "Restrict the processing of a person's data (PIPL 44: only storage, security, proof of consent and the "
        "answers to their requests go on), or lift the restriction with a reason.  Both are audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{restrict,lift}")
        restrict = actions.add_parser("restrict", help="restrict the processing of a person's data")
        restrict.add_argument("reference", help="the person's reference (as the staff console shows it)")
        restrict.add_argument("--request", required=True, help="the request's reference or date and channel (no PII)")
        restrict.add_argument("--by", required=True, metavar="USERNAME", help="your staff account")
        lift = actions.add_parser("lift", help="lift the restriction (needs a reason)")
        lift.add_argument("reference", help="the person's reference")
        lift.add_argument("--reason", required=True, help="why the restriction ends (no PII)")
        lift.add_argument("--by", required=True, metavar="USERNAME", help="your staff account")

    def handle(self, *args: Any, **options: Any) -> None:
        by = staff(options["by"])
        person = find_person(options["reference"])
        if options["action"] == "restrict":
            if restrict_processing(person, by=by, reference=options["request"].strip()[:100]):
                self.stdout.write(f"Restricted the processing of person {person.reference}'s data.")
            else:
                self.stdout.write(f"Person {person.reference} was restricted (or erased) already; nothing changed.")
            return
        try:
            reason = lift_reason(options["reason"])
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from None
        if lift_restriction(person, by=by, reason=reason):
            self.stdout.write(f"Lifted the restriction on person {person.reference}.")
        else:
            self.stdout.write(f"Person {person.reference} was not restricted; nothing changed.")
