"""What the accounts app stores about a person, exported and erased (``piwarden.people.registry``).

* ``visitor_accounts`` and ``visitor_account_state``: the account (its values decrypted), the
  kinds and times of its e-mails, whether an authenticator is set (never its secret: whoever held
  the copy could make the codes).  Erasure deletes the account rows; sessions, mails and
  authenticators go with them.
* ``visitor_sessions``: deleted.
* ``account_login_log``: kept (the Cybersecurity Law: network logs six months), under the log's own
  key, for security only; the housekeeping deletes each record 184 days after the attempt.

An account whose address its holder confirmed is a contact source (:mod:`piwarden.people.contacts`):
the notices to everyone (cessation, material change, incident) reach account holders too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from piwarden.accounts.actions import correct_account_email
from piwarden.accounts.forms import SignUpForm
from piwarden.accounts.models import (
    CATEGORY,
    LOG_CATEGORY,
    SESSION_CATEGORY,
    STATE_CATEGORY,
    Account,
    AccountAuthenticator,
    AccountMail,
    AccountSession,
    LoginRecord,
)
from piwarden.people.contacts import Address, Source, register_contacts
from piwarden.people.models import Person
from piwarden.people.registry import (
    Correctable,
    Counts,
    Deletes,
    Index,
    Keeps,
    Record,
    Subject,
    Whose,
    delete_counted,
    keys,
    register,
    register_correctable,
)
from piwarden.processing.gate import Permit

CHUNK = 200


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# Most people have no account: the four categories are looked up in the export's one probe first.
def accounts(person: Whose) -> QuerySet[Account]:
    return Account.objects.filter(person=person)


def sessions(person: Whose) -> QuerySet[AccountSession]:
    return AccountSession.objects.filter(account__person=person)


def login_records(person: Whose) -> QuerySet[LoginRecord]:
    return LoginRecord.objects.filter(person=person)


def _accounts(person: Person) -> Iterator[Account]:
    return accounts(person).order_by("created_at").iterator(chunk_size=CHUNK)


def export_accounts(permit: Permit) -> Iterator[Record]:
    for account in _accounts(permit.person):
        yield {
            "email": account.email,
            "phone": account.phone,
            "date_of_birth": account.date_of_birth,
            "guardian_email": account.guardian_email,
        }
        for device in AccountAuthenticator.objects.filter(account=account).order_by("created_at"):
            yield {
                "authenticator": "held encrypted; not exported (it makes your sign-in codes)",
                "confirmed": device.confirmed,
            }


def export_state(permit: Permit) -> Iterator[Record]:
    for account in _accounts(permit.person):
        yield {
            "password": "a one-way Argon2id hash is held; the password itself never is",
            "state": account.state,
            "needs_guardian": account.needs_guardian,
            "language": account.language,
            "created_at": _iso(account.created_at),
            "email_verified_at": _iso(account.email_verified_at),
            "guardian_consented_at": _iso(account.guardian_consented_at),
            "password_changed_at": _iso(account.password_changed_at),
            "policy_notice_dismissed": account.notice_dismissed or None,
        }
        for mail in AccountMail.objects.filter(account=account).order_by("created_at"):
            yield {"mail": mail.kind, "created_at": _iso(mail.created_at), "sent_at": _iso(mail.sent_at)}
        for device in AccountAuthenticator.objects.filter(account=account).order_by("created_at"):
            yield {"authenticator_created_at": _iso(device.created_at), "last_t": device.last_t}


def delete_accounts(people: Sequence[Person]) -> Counts:
    return delete_counted(Account.objects.filter(person_id__in=keys(people)), "person")


def export_sessions(permit: Permit) -> Iterator[Record]:
    for session in sessions(permit.person).order_by("created_at").iterator(chunk_size=CHUNK):
        yield {
            "created_at": _iso(session.created_at),
            "last_seen_at": _iso(session.last_seen_at),
            "expires_at": _iso(session.expires_at),
        }


def delete_sessions(people: Sequence[Person]) -> Counts:
    return delete_counted(AccountSession.objects.filter(account__person_id__in=keys(people)), "account__person")


def export_login_log(permit: Permit) -> Iterator[Record]:
    for record in login_records(permit.person).order_by("occurred_at").iterator(chunk_size=CHUNK):
        yield {
            "occurred_at": _iso(record.occurred_at),
            "result": record.result,
            "network": record.ip_prefix,
            "user_agent": record.user_agent,
        }


# The account, its state and its sessions: deleted with their rows.
for _category, _export, _erase, _rows in (
    (CATEGORY, export_accounts, delete_accounts, accounts),
    (STATE_CATEGORY, export_state, delete_accounts, accounts),
    (SESSION_CATEGORY, export_sessions, delete_sessions, sessions),
):
    register(
        _category, subject=Subject.VISITOR, export=_export, erase=Deletes.people(_erase), module=__name__, rows=_rows
    )


# --- correction (PIPL 46): the account's own fields, through the rights portal's correction ------


def _clean(name: str) -> Callable[[str], str]:
    def clean(value: str) -> str:
        # The sign-up form's field: the same checks and messages as when the value was given.
        return str(SignUpForm().fields[name].clean(value))

    return clean


def _apply(name: str, write: Callable[[Account, str], None]) -> Callable[[Person, str], tuple[int, int]]:
    def apply(person: Person, value: str) -> tuple[int, int]:
        changed = unchanged = 0
        for account in accounts(person).select_for_update():
            if getattr(account, name) == value:
                unchanged += 1
                continue
            write(account, value)
            changed += 1
        return changed, unchanged

    return apply


def _write_phone(account: Account, value: str) -> None:
    account.phone = value
    account.save(update_fields=["phone"])  # sealed under its own associated data


# The date of birth is not offered: it decides whether a guardian must consent (a change is a
# guardian's matter, not a correction of a value).
_CORRECTED = {"email": (correct_account_email, Index.EMAIL), "phone": (_write_phone, Index.PHONE)}
for _name, (_write, _index) in _CORRECTED.items():
    register_correctable(
        Correctable(
            field=f"accounts.Account.{_name}",
            category=CATEGORY,
            clean=_clean(_name),
            apply=_apply(_name, _write),
            index=_index,
        )
    )

register(
    LOG_CATEGORY,
    subject=Subject.VISITOR,
    export=export_login_log,
    rows=login_records,
    erase=Keeps(
        gettext_noop(
            "Network logs: the Cybersecurity Law requires them for at least six months; kept for security only, "
            "under a key of their own, and deleted by the housekeeping 184 days after each attempt."
        )
    ),
    module=__name__,
)


# --- whom a notice to everyone reaches (piwarden.people.contacts) ------------------------------


def _holders() -> Iterator[uuid.UUID]:
    """The persons, not erased, with an account whose address they confirmed (the e-mailed link):
    an address never confirmed may be someone else's, and its account is deleted after 7 days."""
    confirmed = Account.objects.filter(email_verified_at__isnull=False, person__erased_at__isnull=True)
    yield from confirmed.values_list("person_id", flat=True).order_by("person_id").iterator(chunk_size=CHUNK)


def _address(person: Person) -> Address | None:
    """The account's address and language (inside the caller's permit)."""
    account = (
        accounts(person)
        .filter(email_verified_at__isnull=False)
        .only("id", "person_id", "data_key_id", "email", "language")
        .order_by("created_at")
        .last()
    )
    if account is None or not account.email:
        return None
    return Address(email=account.email, language=account.language)


register_contacts(Source(name="accounts", category=CATEGORY, people=_holders, address=_address, module=__name__))
