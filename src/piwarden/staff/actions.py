"""Write paths for staff accounts and sessions.

Each function here is an entry point (Zulip's ``do_*``): it opens its own durable transaction,
so it cannot be nested in a caller's by mistake, changes the state and writes its audit event
in that transaction.  Views and commands call one of them and keep only their interface.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.http import HttpRequest

from piwarden.audit.log import EventType, record_event
from piwarden.staff.models import Authenticator, StaffPreference


@dataclass(frozen=True)
class NewStaff:
    user: User
    authenticator: Authenticator


@transaction.atomic(durable=True)
def create_staff(*, username: str, email: str, password: str, role: str) -> NewStaff:
    """A staff account with one role and one confirmed TOTP authenticator (secret encrypted)."""
    user = User.objects.create_user(username, email, password, is_staff=True)
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    authenticator = Authenticator.enrol(user)
    record_event(EventType.STAFF_CREATED, extra={"username": username, "role": role})
    return NewStaff(user=user, authenticator=authenticator)


@transaction.atomic(durable=True)
def set_console_language(user: User, language: str) -> None:
    """Remember the staff member's console language ('' goes back to following the browser)."""
    if language and language not in dict(settings.LANGUAGES):
        raise ValueError(f"not a language of this site: {language!r}")
    StaffPreference.objects.update_or_create(user=user, defaults={"language": language})
    record_event(EventType.STAFF_LANGUAGE_SET, actor=user, extra={"language": language or "browser"})


@transaction.atomic(durable=True)
def change_staff_password(user: User, password: str) -> None:
    """Give a staff member a new password (already validated by the caller).

    Every session of theirs ends with it: Django keeps a digest of the password hash in each
    session and signs out a session whose digest no longer matches.  The event names the account
    and who is recorded as acting (the operator's command has no staff actor).
    """
    user.set_password(password)
    user.save(update_fields=["password"])
    record_event(EventType.STAFF_PASSWORD_CHANGED, extra={"username": user.get_username()})


@transaction.atomic(durable=True)
def sign_in_staff(request: HttpRequest, user: User) -> None:
    """Start the session of a staff member whose password and code the sign-in form accepted.

    The session, the last-login time and the ``staff.signed_in`` event commit together: no
    session exists that the log does not show.
    """
    login(request, user)
    record_event(EventType.STAFF_SIGNED_IN, actor=user)


@transaction.atomic(durable=True)
def record_failed_sign_in(*, username: str, failed_step: str) -> None:
    """Record a refused sign-in: which step failed, and the account only when it is staff's.

    A mistyped username may be anything (a password, another person's name): it is never
    written down, only whether it named a staff account.
    """
    account = User.objects.filter(username=username[:150], is_staff=True).first()
    record_event(
        EventType.STAFF_SIGN_IN_FAILED,
        actor=account,
        purpose="security",
        extra={"known_account": account is not None, "failed_step": failed_step},
    )


@transaction.atomic(durable=True)
def sign_out_staff(request: HttpRequest) -> None:
    """End the session; a staff member's sign-out is recorded with the session's deletion."""
    if isinstance(request.user, User):
        record_event(EventType.STAFF_SIGNED_OUT, actor=request.user)
    logout(request)
