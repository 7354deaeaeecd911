"""Write paths of the security events and the risk rules.

* :func:`record_security_event`: a request's device and software information (one INSERT, in the
  caller's transaction if one is open).  The visitor-accounts app calls it for sign-in and sign-up;
  the consultation and rights pages for each request they accept.
* :func:`refuse_client`: a refusal by a risk rule (rate limit, too many submissions, too many
  wrong CAPTCHA answers): the request's security event, the :class:`Refusal` with its reference
  and the audit event, in one durable transaction.
* :func:`request_review`: the person asks a member of staff to review a refusal (PIPL 24).
* :func:`decide_refusal`: the security role lifts the refusal (the client's counters are
  forgotten, so the person may submit at once) or upholds it, with a reason the person reads.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connections, router, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop
from uuid6 import uuid7

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.monitoring.access import mask_address
from piwarden.prepared import execute
from piwarden.ratelimit.limiter import IPV6_PREFIX, bucket_for
from piwarden.ratelimit.models import RateCounter
from piwarden.security.device import ClientInfo, describe_traits, period_keys, signature
from piwarden.security.models import (
    MESSAGE_MAX_LENGTH,
    REASON_MAX_LENGTH,
    EventKind,
    Refusal,
    ReviewOutcome,
    Rule,
    SecurityEvent,
)
from piwarden.staff import permissions
from piwarden.staff.access import actor_of, record_refusal

if TYPE_CHECKING:
    from piwarden.people.models import Person

# Every counter a client's address is counted under: lifting a refusal forgets them all.
COUNTED_SCOPES = (
    "consultation",
    "rights",
    "rights_code",
    "cookie_choice",
    "api",
    "security_review",
    "risk",
    "captcha_failures",
)
REASON_MIN_LENGTH = 10

_FIELDS = [f for f in SecurityEvent._meta.local_concrete_fields if not f.generated]


@functools.cache
def _insert_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    columns = ", ".join(quote(f.column or f.name) for f in _FIELDS)
    marks = ", ".join(["%s"] * len(_FIELDS))
    return f"INSERT INTO {quote(SecurityEvent._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608  # names from the model


def _insert_event(info: ClientInfo, kind: str, scope: str, person: Person | None, about: str) -> uuid.UUID:
    """One INSERT of the event, its values computed here: no model instance, no signals (the
    consultation POST pays this; ``bench/security_events.py``).  The address and the user agent are
    sealed with the month's primitive and the associated data ``EncryptedTextField`` gives them
    (``table|pk|column``), so the model's attributes decrypt them as any encrypted field."""
    now = timezone.now()
    keys = period_keys(now)
    pk = uuid7()
    table = SecurityEvent._meta.db_table
    seal = keys.primitive.encrypt
    values = {
        "id": pk,
        "data_key": keys.data_key_id,
        "occurred_at": now,
        "kind": kind,
        "scope": scope[:20],
        "address": seal(info.address.encode(), f"{table}|{pk}|address".encode()),
        "user_agent": seal(info.user_agent.encode(), f"{table}|{pk}|user_agent".encode()),
        "device": signature(keys.device_secret, info.traits),
        "person": person.pk if person is not None else None,
        "about": about[:20],
    }
    alias = router.db_for_write(SecurityEvent)
    db = connections[alias]
    params = [f.get_db_prep_save(values[f.name], db) for f in _FIELDS]
    execute(_insert_sql(alias), params, using=alias, rows=False)
    return pk


def record_security_event(
    request: HttpRequest, kind: EventKind | str, *, scope: str = "", person: Person | None = None, about: str = ""
) -> uuid.UUID:
    """Record ``request``'s IP address, user agent and device signature as a security event; its id.

    ``kind`` is an :class:`EventKind` (``sign_in``, ``sign_up``, ``consultation``, ``rights``);
    ``person`` ties it to the person the request concerns (their export lists it), ``about`` names
    the object by its reference (never a personal value).  One INSERT: in the caller's transaction
    when one is open (a sign-in's), else on its own.  Not an audit event: the row is the security
    log itself, kept 184 days (``policy/declaration.toml``, ``security_events``).
    """
    return _insert_event(ClientInfo.of(request), str(kind), scope or str(kind), person, about)


class Stored(Protocol):
    """What a write path stored for a person: a consultation, a rights request."""

    @property
    def person(self) -> Person: ...

    @property
    def reference(self) -> str: ...


def recording(request: HttpRequest, kind: EventKind) -> Callable[[Stored], uuid.UUID]:
    """For a write path's ``also``: once it stored its object, in its transaction, the request's
    security event, tied to the object's person and named by its reference (every interface alike)."""
    return lambda stored: record_security_event(request, kind, person=stored.person, about=stored.reference)


# --- refusals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """What a refusal page shows: the reference to cite, which rule, and when to try again."""

    reference: str
    rule: str
    retry_after: int


def existing_refusal(client: str, window_start: int) -> Refusal | None:
    """The latest refusal of this counter's window (each later refused request cites the same one)."""
    return Refusal.objects.filter(client=client, window_start=window_start).order_by("-occurred_at").first()


def refusal_for(
    request: HttpRequest,
    *,
    rule: Rule,
    scope: str,
    client: str,
    window_start: int,
    detail: Mapping[str, Any],
    retry_after: int,
    first: bool,
) -> Refused:
    """The refusal this request cites: a new one for the first refusal of a window (or when none is
    found), else the window's latest, so that a flood writes once per client and window."""
    found = None if first else existing_refusal(client, window_start)
    if found is None:
        found = refuse_client(request, rule=rule, scope=scope, client=client, window_start=window_start, detail=detail)
    return Refused(found.reference, found.rule, retry_after)


@transaction.atomic(durable=True)
def refuse_client(
    request: HttpRequest, *, rule: Rule, scope: str, client: str, window_start: int, detail: Mapping[str, Any]
) -> Refusal:
    """Record a refusal by a risk rule: the request's security event, the refusal with its reference,
    and the audit event (the scope, rule and reference: never the client)."""
    info = ClientInfo.of(request)
    event = SecurityEvent.objects.get(pk=_insert_event(info, EventKind.REFUSED, scope, None, ""))
    # What the security role is shown of the client, masked now: its page then decrypts nothing.
    shown = {"client": mask_address(info.address), "browser": describe_traits(info.user_agent)}
    refusal = Refusal(
        occurred_at=event.occurred_at,
        rule=rule,
        scope=scope[:20],
        detail={**detail, **shown},
        client=client,
        window_start=window_start,
        event=event,
        data_key_id=event.data_key_id,
    )
    refusal.save(force_insert=True)
    record_event(
        EventType.RATE_LIMITED if rule is Rule.RATE_LIMIT else EventType.CLIENT_BLOCKED,
        actor_kind=ActorKind.VISITOR,
        purpose="security",
        extra={"scope": scope, "rule": str(rule), "refusal": refusal.reference},
    )
    return refusal


# --- review -------------------------------------------------------------------------------------


class ReviewRefused(Exception):
    """The review cannot be asked for or decided: a code for the message shown (an English msgid)."""


def request_review(reference: str, message: str, *, language: str) -> Refusal:
    """The person asks for a member of staff to review the refusal ``reference`` (PIPL 24)."""
    message = message.strip()
    if not 1 <= len(message) <= MESSAGE_MAX_LENGTH:
        raise ReviewRefused(gettext_noop("Write what you were doing, in 1 to 1000 characters."))
    return _request_review(reference.strip().upper(), message, language)


@transaction.atomic(durable=True)
def _request_review(reference: str, message: str, language: str) -> Refusal:
    refusal = Refusal.objects.select_for_update().filter(reference=reference).first()
    if refusal is None:
        raise ReviewRefused(gettext_noop("No refusal has this reference. Check it against the refusal page."))
    if refusal.review_requested_at is not None:
        raise ReviewRefused(gettext_noop("A review of this refusal was asked for already."))
    refusal.review_requested_at = timezone.now()
    refusal.message = message
    refusal.review_language = language[:10]
    refusal.save(update_fields=["review_requested_at", "message", "review_language"])
    record_event(
        EventType.REFUSAL_REVIEW_REQUESTED,
        actor_kind=ActorKind.VISITOR,
        purpose="security",
        extra={"refusal": refusal.reference, "rule": refusal.rule},
    )
    return refusal


def decide_refusal(user: AbstractBaseUser | AnonymousUser, reference: str, *, decision: str, reason: str) -> Refusal:
    """The security role lifts or upholds a refusal, with a reason the person reads.  Lifting forgets
    every counter of the client's address, so the person may submit at once.  Another role is refused
    (recorded on its own, before anything is read)."""
    if not permissions.may(user, permissions.Capability.REVIEW_SECURITY_REFUSALS):
        record_refusal(user, "security refusal", gettext_noop("the role may not review refusals"), about=reference)
        raise ReviewRefused(gettext_noop("Your role may not review refusals."))
    reason = reason.strip()
    if decision not in ReviewOutcome.values:
        raise ReviewRefused(gettext_noop("Choose whether to lift or uphold the refusal."))
    if not REASON_MIN_LENGTH <= len(reason) <= REASON_MAX_LENGTH:
        raise ReviewRefused(gettext_noop("Give the reason, in 10 to 500 characters: the person reads it."))
    return _decide(user, reference, ReviewOutcome(decision), reason)


@transaction.atomic(durable=True)
def _decide(user: AbstractBaseUser | AnonymousUser, reference: str, decision: ReviewOutcome, reason: str) -> Refusal:
    refusal = Refusal.objects.select_for_update().select_related("event").filter(reference=reference).first()
    if refusal is None:
        raise ReviewRefused(gettext_noop("No such refusal."))
    if refusal.decided_at is not None:
        raise ReviewRefused(gettext_noop("This refusal was decided already."))
    forgotten = _forget_counters(refusal.event) if decision is ReviewOutcome.LIFTED else 0
    refusal.decided_at = timezone.now()
    refusal.decided_by = actor_of(user)
    refusal.decision = decision
    refusal.decision_reason = reason
    refusal.save(update_fields=["decided_at", "decided_by", "decision", "decision_reason"])
    record_event(
        EventType.REFUSAL_LIFTED if decision is ReviewOutcome.LIFTED else EventType.REFUSAL_UPHELD,
        actor=actor_of(user),
        purpose="security",
        reason=reason,
        extra={"refusal": refusal.reference, "rule": refusal.rule, "counters_forgotten": forgotten},
    )
    return refusal


def _forget_counters(event: SecurityEvent) -> int:
    """Delete every rate-limit counter of the event's client address (each scope's digest of it)."""
    address = event.address
    if not address:
        return 0  # the month's key is gone: nothing left to forget
    ip = ipaddress.ip_address(address)
    counted = str(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        counted = str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False).network_address)
    buckets = [bucket_for(scope, counted) for scope in COUNTED_SCOPES]
    deleted, _ = RateCounter.objects.filter(bucket__in=buckets).delete()
    return deleted


# --- after the retention sweep ---------------------------------------------------------------


@transaction.atomic(durable=True)
def destroy_emptied_month_keys(cutoff: datetime.datetime) -> int:
    """Destroy the data key of every month that ended before ``cutoff`` (the security events'
    retention, counted by the retention sweep) and holds no event or refusal any more: what is left
    of the month anywhere (backups) can no longer be read.  The sweep has removed the month's rows
    by then (:mod:`piwarden.retention.rules`); returns how many keys were destroyed."""
    from piwarden.security.device import forget_period_keys, month_of  # noqa: PLC0415  # only here
    from piwarden.security.models import SecurityPeriod  # noqa: PLC0415  # only here
    from piwarden.vault.crypto import destroy_data_key  # noqa: PLC0415  # only here

    destroyed = 0
    ended = month_of(cutoff)  # months that started before this one ended before the cutoff's month
    for period in SecurityPeriod.objects.filter(starts_on__lt=ended).select_related("data_key"):
        held = (
            SecurityEvent.objects.filter(data_key_id=period.data_key_id).exists()
            or Refusal.objects.filter(data_key_id=period.data_key_id).exists()
        )
        if held:
            continue
        key = period.data_key
        period.delete()
        destroy_data_key(key)
        forget_period_keys()
        destroyed += 1
    return destroyed
