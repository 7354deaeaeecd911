"""Write paths of visitor accounts: sign-up, confirmation, sign-in and out, passwords, TOTP,
cancellation, and the guardian's consent (the children app calls :func:`guardian_consented`).

Known and unknown addresses get the same answer and comparable work:

* sign-up hashes the password either way; a new address creates the account and queues the
  confirmation e-mail, a known one queues an e-mail to the owner ("someone tried to open an
  account with your address") and the page says the same "check your mail" to both;
* sign-in verifies against a dummy Argon2 hash when no account has the address;
* a reset writes one mail row and queues one task either way (the row of an unknown address
  names no account, and its task deletes it).

The throttling (:mod:`piwarden.accounts.throttle`) runs in the view before any of these, so no
refused attempt reaches a hash.
"""

from __future__ import annotations

import datetime
import enum
import functools
import ipaddress
import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from piwarden.accounts import passwords, sessions
from piwarden.accounts.models import (
    CATEGORY,
    LOG_CATEGORY,
    PURPOSE,
    STATE_CATEGORY,
    Account,
    AccountAuthenticator,
    AccountMail,
    AccountSession,
    AccountState,
    LoginRecord,
    LoginResult,
    MailKind,
)
from piwarden.accounts.tasks import send_account_mail
from piwarden.accounts.totp import verify_code
from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.children.actions import request_guardian_consent
from piwarden.people.actions import NewPerson, erase_person, person_or_new
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.prepared import prepare_enqueue
from piwarden.processing import gate
from piwarden.vault import blind
from piwarden.vault.crypto import new_data_key

SECURITY = "security"
PERSONAL_FIELDS = ("email", "phone", "date_of_birth", "guardian_email")


# --- sign-up -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignUp:
    """A validated sign-up form (``accounts.forms.SignUpForm.to_sign_up``)."""

    email: str
    phone: str  # E.164 or ""
    date_of_birth: datetime.date
    guardian_email: str  # "" unless under the age threshold
    password: str
    language: str


def age_on(date_of_birth: datetime.date, today: datetime.date) -> int:
    before_birthday = (today.month, today.day) < (date_of_birth.month, date_of_birth.day)
    return today.year - date_of_birth.year - int(before_birthday)


def is_child(date_of_birth: datetime.date, today: datetime.date | None = None) -> bool:
    """Under the declared age (policy §八: 14): a guardian must consent before the account works."""
    today = today or timezone.localdate()
    return age_on(date_of_birth, today) < load_declaration().children.age_threshold


def sign_up(given: SignUp) -> None:
    """Open an account, or, when the address has one, e-mail its owner instead (same answer).

    Under 14 (policy §八, CHD-01) nothing is stored yet: the guardian is asked by the children
    app's one-use link, with the sign-up sealed in that request, and the account is opened only
    when they consent (:func:`open_child_account`)."""
    encoded = passwords.hash_password(given.password)  # the same work for a known address
    index = blind.email_index(given.email)
    existing = Account.objects.filter(email_index=index).first()
    if existing is None:
        if is_child(given.date_of_birth):
            request_guardian_consent(
                _sealed(given, encoded),
                given.guardian_email,
                given.language,
                purposes=(PURPOSE,),
                on_consent=open_child_account,
            )
            return
        try:
            _create(given, encoded, index)
        except IntegrityError:  # the same address signed up at the same moment
            existing = Account.objects.filter(email_index=index).first()
            if existing is None:
                raise
        else:
            return
    _already_registered(existing)


def _sealed(given: SignUp, encoded: str) -> dict[str, str]:
    """What a child's sign-up keeps until the guardian answers (sealed by the children app)."""
    return {
        "email": given.email,
        "phone": given.phone,
        "date_of_birth": given.date_of_birth.isoformat(),
        "guardian_email": given.guardian_email,
        "password": encoded,
        "language": given.language,
    }


def open_child_account(sealed: dict[str, str]) -> Person | None:
    """The guardian consented (``children.actions.confirm_guardian_consent``): open the child's
    account from the sealed sign-up, not usable until the guardian's consent is recorded
    (``guardian_consented``) and the child confirms the address.  The person of an account already
    waiting for a guardian with this address (an earlier click whose consent was not recorded); None
    when the address has another account by now (the guardian's link then opens nothing)."""
    index = blind.email_index(sealed["email"])
    given = SignUp(
        email=sealed["email"],
        phone=sealed["phone"],
        date_of_birth=datetime.date.fromisoformat(sealed["date_of_birth"]),
        guardian_email=sealed["guardian_email"],
        password="",  # only its hash was kept
        language=sealed["language"],
    )
    try:
        return _create(given, sealed["password"], index)
    except IntegrityError:
        existing = Account.objects.filter(email_index=index).first()
    if existing is not None and existing.needs_guardian and existing.guardian_consented_at is None:
        return Person.objects.get(pk=existing.person_id)
    return None


def _create(given: SignUp, encoded: str, index: str) -> Person:
    found = person_or_new(email=given.email, phone=given.phone or None)
    person = found.person if isinstance(found, NewPerson) else found
    child = is_child(given.date_of_birth)
    log_key = new_data_key()
    account = Account(
        person=person,
        data_key_id=person.data_key_id,
        email=given.email,
        email_index=index,
        phone=given.phone,
        date_of_birth=given.date_of_birth.isoformat(),
        guardian_email=given.guardian_email if child else "",
        password=encoded,
        needs_guardian=child,
        language=given.language,
        log_key=log_key,
    )
    use = gate.Use("account.sign_up", actor_kind=ActorKind.VISITOR, fields=PERSONAL_FIELDS)
    with gate.processing(found, PURPOSE, categories={CATEGORY, STATE_CATEGORY}, use=use):
        log_key.save(force_insert=True)
        account.save(force_insert=True)
        mail = AccountMail.objects.create(account=account, kind=MailKind.VERIFY, created_at=timezone.now())
        prepare_enqueue(send_account_mail, str(mail.pk)).run()
        record_event(
            EventType.ACCOUNT_CREATED,
            actor_kind=ActorKind.VISITOR,
            person=person,
            purpose=PURPOSE,
            fields=[f for f in PERSONAL_FIELDS if getattr(account, f)],
            extra={"account": str(account.pk), "needs_guardian": child},
        )
    return person


@transaction.atomic(durable=True)
def _already_registered(account: Account) -> None:
    mail = AccountMail.objects.create(account=account, kind=MailKind.ALREADY_REGISTERED, created_at=timezone.now())
    prepare_enqueue(send_account_mail, str(mail.pk)).run()
    record_event(
        EventType.ACCOUNT_SIGN_UP_REPEATED,
        actor_kind=ActorKind.VISITOR,
        person=Person(pk=account.person_id),
        purpose=PURPOSE,
        extra={"account": str(account.pk)},
    )


@transaction.atomic(durable=True)
def verify_email(account: Account) -> Account:
    """The address is confirmed (the e-mailed link): usable now, or waiting for a guardian."""
    locked = Account.objects.select_for_update().get(pk=account.pk)
    if locked.email_verified_at is None:
        locked.email_verified_at = timezone.now()
        waiting = locked.needs_guardian and locked.guardian_consented_at is None
        locked.state = AccountState.PENDING_GUARDIAN if waiting else AccountState.ACTIVE
        locked.save(update_fields=["email_verified_at", "state"])
        record_event(
            EventType.ACCOUNT_VERIFIED,
            actor_kind=ActorKind.VISITOR,
            person=Person(pk=locked.person_id),
            purpose=PURPOSE,
            extra={"account": str(locked.pk), "state": locked.state},
        )
    return locked


@transaction.atomic(durable=True)
def guardian_consented(account: Account) -> Account:
    """A guardian consented for this child's account (the children app calls this once its
    guardian has confirmed and given separate consent, recorded there): the account becomes
    usable once its own address is confirmed too.  Idempotent."""
    locked = Account.objects.select_for_update().get(pk=account.pk)
    if locked.guardian_consented_at is None:
        locked.guardian_consented_at = timezone.now()
        if locked.state == AccountState.PENDING_GUARDIAN:
            locked.state = AccountState.ACTIVE
        locked.save(update_fields=["guardian_consented_at", "state"])
        record_event(
            EventType.ACCOUNT_GUARDIAN_CONSENTED,
            person=Person(pk=locked.person_id),
            purpose=PURPOSE,
            extra={"account": str(locked.pk), "state": locked.state},
        )
    return locked


@transaction.atomic(durable=True)
def record_notice_dismissed(account: Account, number: int) -> bool:
    """The holder, signed in, closed the notice of material policy version ``number``: recorded for the
    account, so that it stays closed on every device they sign in from.  Recorded once (a version not
    later than the one recorded changes nothing); True when it was."""
    marked = Account.objects.filter(pk=account.pk, notice_dismissed__lt=number).update(notice_dismissed=number)
    if marked:
        record_event(
            EventType.ACCOUNT_NOTICE_DISMISSED,
            actor_kind=ActorKind.VISITOR,
            person=Person(pk=account.person_id),
            purpose=PURPOSE,
            extra={"account": str(account.pk), "version": number},
        )
    return bool(marked)


@transaction.atomic(durable=True)
def resend_verification(account: Account) -> None:
    if account.email_verified_at is not None:
        return
    mail = AccountMail.objects.create(account=account, kind=MailKind.VERIFY, created_at=timezone.now())
    prepare_enqueue(send_account_mail, str(mail.pk)).run()


def correct_account_email(account: Account, address: str) -> None:
    """A part of a correction's write path (``people.actions.correct_person_data``, in its
    transaction): the account's address becomes ``address``, its look-up digest with it, and it is
    confirmed again: the account stays usable (the rights request proved who asked), and a
    confirmation link goes to the new address, whose click records the confirmation."""
    account.email = address
    account.email_index = blind.email_index(address)
    account.email_verified_at = None
    account.save(update_fields=["email", "email_index", "email_verified_at"])
    mail = AccountMail.objects.create(account=account, kind=MailKind.VERIFY, created_at=timezone.now())
    prepare_enqueue(send_account_mail, str(mail.pk)).run()


# --- sign-in -------------------------------------------------------------------------------


def truncated_address(address: str) -> str:
    """What the login log keeps of an address: the IPv4 /24 or the IPv6 /48 it belongs to."""
    ip = ipaddress.ip_address(address)
    prefix = 24 if ip.version == 4 else 48  # noqa: PLR2004
    return str(ipaddress.ip_network((ip, prefix), strict=False))


@dataclass(frozen=True)
class Client:
    """Where an attempt came from, as the login log keeps it."""

    address: str  # the counted client address (piwarden.ratelimit.limiter.client_address)
    user_agent: str

    @property
    def network(self) -> str:
        return truncated_address(self.address)


class Outcome(enum.Enum):
    SIGNED_IN = "signed_in"
    NEEDS_CODE = "needs_code"
    WRONG = "wrong"  # wrong password, or no such account: one answer
    NOT_VERIFIED = "not_verified"
    PENDING_GUARDIAN = "pending_guardian"


@dataclass(frozen=True)
class SignedIn:
    outcome: Outcome
    token: str = ""  # the new session's cookie value
    account: Account | None = None


def _log(account: Account, result: LoginResult, client: Client) -> None:
    """One row of the login log, in the gate's transaction for the security purpose."""
    use = gate.Use("account.login_log", actor_kind=ActorKind.VISITOR, extra={"result": str(result)})
    with gate.processing(
        functools.partial(Person.objects.get, pk=account.person_id), SECURITY, categories={LOG_CATEGORY}, use=use
    ) as permit:
        _write_log(permit.person, account, result, client)


def _write_log(person: Person, account: Account, result: LoginResult, client: Client) -> None:
    LoginRecord(
        person=person,
        data_key_id=account.log_key_id,
        occurred_at=timezone.now(),
        result=result,
        ip_prefix=client.network,
        user_agent=client.user_agent[:300],
    ).save(force_insert=True)


def record_refused_attempt(email: str, result: LoginResult, client: Client) -> None:
    """A throttled or CAPTCHA-less attempt on an address: in its account's log, if it has one."""
    account = Account.objects.filter(email_index=blind.email_index(email)).first()
    if account is not None:
        _log(account, result, client)


def sign_in(email: str, password: str, client: Client) -> SignedIn:
    """Check the password (the view throttled first) and open a session, or say why not."""
    account = Account.objects.filter(email_index=blind.email_index(email)).first()
    if account is None:
        passwords.verify_nobody(password)
        return SignedIn(Outcome.WRONG)
    if not passwords.verify_password(password, account.password):
        _log(account, LoginResult.WRONG_PASSWORD, client)
        return SignedIn(Outcome.WRONG)
    if account.state == AccountState.UNVERIFIED:
        _log(account, LoginResult.NOT_VERIFIED, client)
        return SignedIn(Outcome.NOT_VERIFIED, account=account)
    if account.state == AccountState.PENDING_GUARDIAN:
        _log(account, LoginResult.PENDING_GUARDIAN, client)
        return SignedIn(Outcome.PENDING_GUARDIAN, account=account)
    if account.has_totp:
        return SignedIn(Outcome.NEEDS_CODE, _open_session(account, client, pending=True), account)
    return SignedIn(Outcome.SIGNED_IN, _open_session(account, client, pending=False), account)


def _open_session(account: Account, client: Client, *, pending: bool) -> str:
    token = sessions.new_token()
    now = timezone.now()
    use = gate.Use("account.sign_in", actor_kind=ActorKind.VISITOR, extra={"second_factor_pending": pending})
    person = functools.partial(Person.objects.get, pk=account.person_id)
    with gate.processing(person, SECURITY, categories={LOG_CATEGORY}, use=use) as permit:
        AccountSession.objects.create(
            account=account,
            digest=sessions.digest(token),
            created_at=now,
            last_seen_at=now,
            expires_at=sessions.session_expiry(now),
            second_factor_pending=pending,
        )
        if not pending:
            _write_log(permit.person, account, LoginResult.SUCCESS, client)
            record_event(
                EventType.ACCOUNT_SIGNED_IN,
                actor_kind=ActorKind.VISITOR,
                person=permit.person,
                purpose=SECURITY,
                extra={"account": str(account.pk)},
            )
    return token


def complete_second_factor(session: AccountSession, code: str, client: Client) -> str | None:
    """The authenticator code of a half-signed-in session: a new, full session's token, or None."""
    account = session.account
    device = account.authenticators.filter(confirmed=True).first()
    if device is None or not _accept_code(device, code):
        _log(account, LoginResult.WRONG_CODE, client)
        return None
    AccountSession.objects.filter(pk=session.pk).delete()
    return _open_session(account, client, pending=False)


def _accept_code(device: AccountAuthenticator, code: str) -> bool:
    """Check a code against the authenticator's secret (a use of it, for security, through the gate)."""
    use = gate.Use("account.totp_check", actor_kind=ActorKind.VISITOR, fields=("authenticator",))
    person = functools.partial(Person.objects.get, pk=device.account.person_id)
    with gate.processing(person, SECURITY, categories={CATEGORY}, use=use):
        locked = AccountAuthenticator.objects.select_for_update().get(pk=device.pk)
        step = verify_code(locked.secret, code, after=locked.last_t)
        if step is None:
            return False
        locked.last_t = step
        locked.save(update_fields=["last_t"])
        return True


@transaction.atomic(durable=True)
def sign_out(session: AccountSession) -> None:
    deleted, _ = AccountSession.objects.filter(pk=session.pk).delete()
    if deleted:
        record_event(
            EventType.ACCOUNT_SIGNED_OUT,
            actor_kind=ActorKind.VISITOR,
            person=Person(pk=session.account.person_id),
            purpose=SECURITY,
            extra={"account": str(session.account_id)},
        )


# --- passwords -----------------------------------------------------------------------------


def change_password(session: AccountSession, current: str, new: str) -> str | None:
    """Check the current password, store the new one, end every other session; the new token of
    this browser's session, or None when the current password was wrong."""
    account = session.account
    if not passwords.verify_password(current, account.password):
        return None
    encoded = passwords.hash_password(new)
    return _set_password(account, encoded, EventType.ACCOUNT_PASSWORD_CHANGED, keep=session)


@transaction.atomic(durable=True)
def _set_password(account: Account, encoded: str, event: EventType, *, keep: AccountSession | None) -> str | None:
    now = timezone.now()
    Account.objects.filter(pk=account.pk).update(password=encoded, password_changed_at=now)
    AccountSession.objects.filter(account=account).delete()
    token = None
    if keep is not None:
        token = sessions.new_token()
        AccountSession.objects.create(
            account=account,
            digest=sessions.digest(token),
            created_at=now,
            last_seen_at=now,
            expires_at=keep.expires_at,
        )
    mail = AccountMail.objects.create(account=account, kind=MailKind.PASSWORD_CHANGED, created_at=now)
    prepare_enqueue(send_account_mail, str(mail.pk)).run()
    record_event(
        event,
        actor_kind=ActorKind.VISITOR,
        person=Person(pk=account.person_id),
        purpose=SECURITY,
        extra={"account": str(account.pk)},
    )
    return token


@transaction.atomic(durable=True)
def request_reset(email: str) -> None:
    """E-mail a reset link if the address has an account; the same statements either way."""
    account = Account.objects.filter(email_index=blind.email_index(email)).first()
    mail = AccountMail.objects.create(account=account, kind=MailKind.RESET, created_at=timezone.now())
    prepare_enqueue(send_account_mail, str(mail.pk)).run()
    if account is not None:
        record_event(
            EventType.ACCOUNT_RESET_ASKED,
            actor_kind=ActorKind.VISITOR,
            person=Person(pk=account.person_id),
            purpose=SECURITY,
            extra={"account": str(account.pk)},
        )


def reset_password(account: Account, new: str) -> None:
    """The reset link's new password: stored, every session ended (the link checked by the view)."""
    _set_password(account, passwords.hash_password(new), EventType.ACCOUNT_PASSWORD_RESET, keep=None)


# --- TOTP ----------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def start_totp(account: Account) -> AccountAuthenticator:
    """A new, unconfirmed authenticator (any earlier unconfirmed one replaced)."""
    account.authenticators.filter(confirmed=False).delete()
    device = AccountAuthenticator(account=account, data_key_id=account.data_key_id, created_at=timezone.now())
    device.secret = secrets.token_hex(20)
    device.save(force_insert=True)
    return device


def confirm_totp(account: Account, code: str) -> bool:
    device = account.authenticators.filter(confirmed=False).first()
    if device is None or not _accept_code(device, code):
        return False
    _confirm(account, device)
    return True


@transaction.atomic(durable=True)
def _confirm(account: Account, device: AccountAuthenticator) -> None:
    account.authenticators.exclude(pk=device.pk).delete()
    AccountAuthenticator.objects.filter(pk=device.pk).update(confirmed=True)
    record_event(
        EventType.ACCOUNT_TOTP_ADDED,
        actor_kind=ActorKind.VISITOR,
        person=Person(pk=account.person_id),
        purpose=SECURITY,
        extra={"account": str(account.pk)},
    )


def remove_totp(account: Account, password: str) -> bool:
    """Remove the authenticator (the password asked again); a password shorter than 15 characters
    then no longer suffices, so removal is refused until the password is changed."""
    if not passwords.verify_password(password, account.password):
        return False
    _remove(account)
    return True


@transaction.atomic(durable=True)
def _remove(account: Account) -> None:
    account.authenticators.all().delete()
    record_event(
        EventType.ACCOUNT_TOTP_REMOVED,
        actor_kind=ActorKind.VISITOR,
        person=Person(pk=account.person_id),
        purpose=SECURITY,
        extra={"account": str(account.pk)},
    )


# --- cancellation --------------------------------------------------------------------------

CANCEL_REASON = "The account holder cancelled their account on the account page (signed in, password typed again)."


def cancel_account(session: AccountSession, password: str, code: str = "") -> bool:
    """Cancel the account: the password (and the authenticator code, if one is set) asked again,
    then the person erased through every category's eraser (``people.actions.erase_person``):
    the account, its sessions and authenticator deleted, the rest of their data deleted or
    crypto-shredded; the login log kept for its declared retention, under its own key."""
    account = session.account
    if not passwords.verify_password(password, account.password):
        return False
    device = account.authenticators.filter(confirmed=True).first()
    if device is not None and not _accept_code(device, code):
        return False
    erase_person(Person.objects.get(pk=account.person_id), reason=CANCEL_REASON)
    return True
