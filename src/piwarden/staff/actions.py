"""Write paths for staff accounts and sessions.

Each function here is an entry point (Zulip's ``do_*``): it opens its own durable transaction,
so it cannot be nested in a caller's by mistake, changes the state and writes its audit event
in that transaction.  Views and commands call one of them and keep only their interface.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from piwarden.audit.log import EventType, record_event
from piwarden.prepared import prepare_enqueue
from piwarden.staff import devices
from piwarden.staff.models import Authenticator, KnownDevice, StaffPreference
from piwarden.staff.tasks import send_new_device_mail

# The session key holding when the staff member signed in (seconds since the epoch): the
# absolute limit (PIWARDEN_STAFF_MAX_SESSION_SECONDS) counts from it.
SIGNED_IN_AT = "piwarden_signed_in_at"


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


@dataclass(frozen=True)
class SignedIn:
    new_device: bool
    device_token: str | None  # a new device cookie for the response to set, when the browser had none


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
def sign_in_staff(request: HttpRequest, user: User) -> SignedIn:
    """Start the session of a staff member whose password and code the sign-in form accepted.

    The session (with the time it started, for the 12-hour limit), the last-login time and the
    ``staff.signed_in`` event commit together: no session exists that the log does not show.  A
    browser this account never signed in from (its device cookie's keyed hash unknown for the
    account) is recorded as a new device, with ``staff.new_device`` and an e-mail to the staff
    member queued in the same transaction.
    """
    login(request, user)
    request.session[SIGNED_IN_AT] = int(time.time())
    record_event(EventType.STAFF_SIGNED_IN, actor=user)
    presented = devices.presented(request)
    token = presented or devices.new_token()
    now = timezone.now()
    digest = devices.digest(token)
    if KnownDevice.objects.filter(user=user, digest=digest).update(last_seen_at=now):
        return SignedIn(new_device=False, device_token=None)
    device = KnownDevice.objects.create(user=user, digest=digest, first_seen_at=now, last_seen_at=now)
    mailed = bool(user.email)
    record_event(
        EventType.STAFF_NEW_DEVICE, actor=user, purpose="security", extra={"device": device.pk, "mailed": mailed}
    )
    if mailed:
        prepare_enqueue(send_new_device_mail, str(device.pk)).run()  # as .enqueue(): sent once committed
    return SignedIn(new_device=True, device_token=None if presented else token)


@transaction.atomic(durable=True)
def end_expired_session(request: HttpRequest, *, signed_in_for: int) -> None:
    """End a staff session that reached the absolute limit; recorded with the session's deletion."""
    if isinstance(request.user, User):
        record_event(EventType.STAFF_SESSION_EXPIRED, actor=request.user, extra={"signed_in_for": signed_in_for})
    logout(request)


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
