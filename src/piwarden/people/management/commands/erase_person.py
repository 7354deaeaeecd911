"""piwarden erase_person --email ADDRESS --reason TEXT [--yes]"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from piwarden.people.actions import erase_person, erasure_reason
from piwarden.people.models import Person
from piwarden.vault import blind


class Command(BaseCommand):
    help = (
        "Erase one person at their request (policy §三(二), §六): find them by e-mail address through the blind "
        "index, delete their consultation requests and the background jobs about them, withdraw their consents "
        "(each category's eraser), destroy their data key so that everything they gave us becomes unreadable "
        "here, clear their look-up digests and delete the sealed copies of e-mails sent to them.  The act is "
        "recorded in the audit log with the reason, and in the erasure ledger, so that `piwarden retention "
        "replay-erasures` erases them again after a restore of an earlier database backup (which holds their "
        "key).  Cannot be undone.  Asks for confirmation unless --yes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True, help="the address the person wrote to us from")
        parser.add_argument("--reason", required=True, help="why, e.g. the request's date and channel (no PII)")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:  # checked before anyone is asked to confirm; erase_person checks it again
            reason = erasure_reason(options["reason"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        person = Person.objects.filter(email_index=blind.email_index(options["email"])).first()
        if person is None:
            raise CommandError("No one with that e-mail address is stored (already erased, or never here).")
        inquiries = person.inquiries.count()
        self.stdout.write(f"Person {person.reference}: {inquiries} consultation request(s).")
        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError("No terminal to confirm on: add --yes to erase without asking.")
            answer = input("Erase this person for good? Type 'erase' to confirm: ")
            if answer.strip() != "erase":
                raise CommandError("Not confirmed; nothing was erased.")
        if not erase_person(person, reason=reason):  # erased meanwhile by another process
            raise CommandError(f"Person {person.reference} was erased already; nothing more was done.")
        self.stdout.write(f"Erased person {person.reference}: their data can no longer be read anywhere.")
