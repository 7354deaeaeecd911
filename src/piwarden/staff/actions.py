"""Write paths for staff accounts: each one atomic, with its audit event in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from piwarden.audit.log import EventType, record_event
from piwarden.staff.models import Authenticator, StaffPreference


@dataclass(frozen=True)
class NewStaff:
    user: User
    authenticator: Authenticator


@transaction.atomic
def create_staff(*, username: str, email: str, password: str, role: str) -> NewStaff:
    """A staff account with one role and one confirmed TOTP authenticator (secret encrypted)."""
    user = User.objects.create_user(username, email, password, is_staff=True)
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    authenticator = Authenticator.enrol(user)
    record_event(EventType.STAFF_CREATED, extra={"username": username, "role": role})
    return NewStaff(user=user, authenticator=authenticator)


@transaction.atomic
def set_console_language(user: User, language: str) -> None:
    """Remember the staff member's console language ('' goes back to following the browser)."""
    if language and language not in dict(settings.LANGUAGES):
        raise ValueError(f"not a language of this site: {language!r}")
    StaffPreference.objects.update_or_create(user=user, defaults={"language": language})
    record_event(EventType.STAFF_LANGUAGE_SET, actor=user, extra={"language": language or "browser"})
