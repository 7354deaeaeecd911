"""What the account holder reads about themself: the account page (their values and login log).

Read through the gate (purpose ``visitor_account``, the account's categories and its login
log): one recorded use per page, and nothing read for a person who restricted or erased.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass

from piwarden.accounts.models import CATEGORY, LOG_CATEGORY, PURPOSE, Account, AccountState, LoginRecord
from piwarden.audit.log import ActorKind
from piwarden.people.models import Person
from piwarden.processing import gate

LOG_ROWS = 50  # the page shows the latest ones; the data copy (rights portal) holds them all


@dataclass(frozen=True)
class LoginLine:
    occurred_at: object
    result: str
    network: str
    user_agent: str


@dataclass(frozen=True)
class AccountView:
    email: str
    phone: str
    date_of_birth: str
    guardian_email: str
    state: str
    created_at: object
    has_totp: bool
    log: list[LoginLine]


def account_view(account: Account) -> AccountView:
    """The holder's own account, decrypted for them (the gate decides and records)."""
    use = gate.Use("account.page", actor_kind=ActorKind.VISITOR, fields=("email", "phone", "date_of_birth"))
    person = functools.partial(Person.objects.get, pk=account.person_id)
    with gate.processing(person, PURPOSE, categories={CATEGORY, LOG_CATEGORY}, use=use):
        fresh = Account.objects.get(pk=account.pk)
        records = LoginRecord.objects.filter(person_id=account.person_id).order_by("-occurred_at")[:LOG_ROWS]
        log = [LoginLine(r.occurred_at, r.get_result_display(), r.ip_prefix or "", r.user_agent or "") for r in records]
        return AccountView(
            email=fresh.email or "",
            phone=fresh.phone or "",
            date_of_birth=fresh.date_of_birth or "",
            guardian_email=fresh.guardian_email or "",
            state=str(AccountState(fresh.state).label),
            created_at=fresh.created_at,
            has_totp=fresh.authenticators.filter(confirmed=True).exists(),
            log=log,
        )


def pending_secret(account: Account) -> tuple[uuid.UUID, str] | None:
    """The unconfirmed authenticator's id and secret, to show once while the holder sets it up."""
    use = gate.Use("account.totp_setup", actor_kind=ActorKind.VISITOR, fields=("authenticator",))
    person = functools.partial(Person.objects.get, pk=account.person_id)
    with gate.processing(person, PURPOSE, categories={CATEGORY}, use=use):
        device = account.authenticators.filter(confirmed=False).first()
        if device is None or device.secret is None:
            return None
        return device.pk, device.secret
