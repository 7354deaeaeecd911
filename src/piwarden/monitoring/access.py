"""What the security role reads: alerts, and the security events of the public site with every
identity masked.

Only a role declared with ``monitor_security`` opens these (the security auditor); another is
refused as the audit log refuses (:func:`piwarden.staff.access.refuse_opening`: a 404 and an
audited refusal).  Each opening is recorded, with its filter.

The security events are read where they are already kept, not copied: the audit log's refusals,
failed sign-ins, rate-limit refusals and wrong CAPTCHA answers (scope or form only, no client),
and django-axes' records of failed sign-ins to the staff console (one row per name and address,
with its count of failures: the one store that holds client addresses).
An address is shown as its network (IPv4 /24, IPv6 /48) and a keyed digest prefix (under the
blind-index key, which never enters the database), so that the auditor tells one client from
another, and the same client across rows, without reading the address.
A typed user name is never shown (it may be a password typed in the wrong box): only whether it
names a staff account, and which by id.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from piwarden.audit.log import EventType, record_event
from piwarden.audit.models import AuditEvent
from piwarden.monitoring.models import Alert
from piwarden.staff import permissions
from piwarden.staff.access import actor_of, refuse_opening
from piwarden.vault.blind import blind_index

ALERT_PAGE_SIZE = 50
MOST_SECURITY_EVENTS = 200  # rows on the security events page, newest first, per filter
DIGEST_SHOWN = 8  # hex digits of the keyed digest shown for an address or a person


def refuse_unless_monitor(user: AbstractBaseUser | AnonymousUser, page: str) -> None:
    if not permissions.may(user, permissions.Capability.MONITOR_SECURITY):
        _refuse(user, page)


def _refuse(user: AbstractBaseUser | AnonymousUser, page: str) -> NoReturn:
    refuse_opening(user, page, gettext_noop("the role may not read security alerts and events"))


def _record_view(user: AbstractBaseUser | AnonymousUser, page: str, shown: dict[str, str]) -> None:
    with transaction.atomic(durable=True):
        extra: dict[str, object] = {"page": page}
        if shown:
            extra["filter"] = shown
        record_event(EventType.SECURITY_VIEWED, actor=actor_of(user), extra=extra)


def list_alerts(user: AbstractBaseUser | AnonymousUser, *, open_only: bool) -> QuerySet[Alert]:
    """Alerts, newest first (only those not yet acknowledged with ``open_only``); the opening is recorded."""
    refuse_unless_monitor(user, "alerts")
    _record_view(user, "alerts", {"open": "1"} if open_only else {})
    alerts = Alert.objects.select_related("staff", "acknowledged_by")
    return alerts.filter(acknowledged_at__isnull=True) if open_only else alerts


def open_alert(user: AbstractBaseUser | AnonymousUser, alert_id: int) -> Alert:
    """One alert, for the security role; another role, or no such alert, is a 404 (recorded)."""
    refuse_unless_monitor(user, "alert")
    alert = Alert.objects.select_related("staff", "acknowledged_by").filter(pk=alert_id).first()
    if alert is None:
        _refuse(user, "alert")
    _record_view(user, "alert", {"alert": str(alert.pk)})
    return alert


# --- the security events of the public site, masked --------------------------------------------


class Kind:
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_IN_ADDRESS = "sign_in_address"
    CODE_REFUSED = "code_refused"
    GATE_REFUSED = "gate_refused"
    REVEAL_REFUSED = "reveal_refused"
    ACCESS_REFUSED = "access_refused"
    RATE_LIMITED = "rate_limited"
    CAPTCHA_FAILED = "captcha_failed"
    CLIENT_BLOCKED = "client_blocked"


KIND_CHOICES = [
    (Kind.SIGN_IN_FAILED, _("Failed staff sign-in (audit log)")),
    (Kind.SIGN_IN_ADDRESS, _("Failed staff sign-ins from one address (sign-in records)")),
    (Kind.CODE_REFUSED, _("Wrong, used or expired one-time code of a rights request")),
    (Kind.GATE_REFUSED, _("Processing refused by the gate")),
    (Kind.REVEAL_REFUSED, _("Reveal of personal data refused")),
    (Kind.ACCESS_REFUSED, _("Staff page refused")),
    (Kind.RATE_LIMITED, _("Requests refused by a rate limit (one entry per client and window)")),
    (Kind.CAPTCHA_FAILED, _("Wrong CAPTCHA answer on a public form")),
    (Kind.CLIENT_BLOCKED, _("Client blocked for the day by a risk rule (refusals: Refusals page)")),
]
_AUDITED = {
    Kind.SIGN_IN_FAILED: EventType.STAFF_SIGN_IN_FAILED,
    Kind.CODE_REFUSED: EventType.RIGHTS_CODE_REFUSED,
    Kind.GATE_REFUSED: EventType.PROCESSING_REFUSED,
    Kind.REVEAL_REFUSED: EventType.PII_REVEAL_REFUSED,
    Kind.ACCESS_REFUSED: EventType.STAFF_ACCESS_REFUSED,
    Kind.RATE_LIMITED: EventType.RATE_LIMITED,
    Kind.CAPTCHA_FAILED: EventType.CAPTCHA_FAILED,
    Kind.CLIENT_BLOCKED: EventType.CLIENT_BLOCKED,
}
_LABELS = dict(KIND_CHOICES)


@dataclass(frozen=True)
class SecurityFilter:
    kind: str = ""
    occurred_from: datetime | None = None  # inclusive
    occurred_before: datetime | None = None  # exclusive

    def describe(self) -> dict[str, str]:
        shown = {
            "kind": self.kind,
            "from": self.occurred_from.isoformat() if self.occurred_from else "",
            "before": self.occurred_before.isoformat() if self.occurred_before else "",
        }
        return {k: v for k, v in shown.items() if v}


@dataclass(frozen=True)
class SecurityEvent:
    at: datetime
    kind: str
    label: str
    staff: str  # "#id username" of the staff account concerned, or ""
    client: str  # the masked network and digest of an address, or the masked person, or ""
    detail: str  # the step that failed, the refusal's code, the page: never a typed value


def security_events(user: AbstractBaseUser | AnonymousUser, narrowed: SecurityFilter) -> list[SecurityEvent]:
    """The latest security events (``MOST_SECURITY_EVENTS``) that ``narrowed`` selects, masked; recorded."""
    refuse_unless_monitor(user, "security events")
    _record_view(user, "security", narrowed.describe())
    rows: list[SecurityEvent] = []
    kinds = [narrowed.kind] if narrowed.kind else [k for k, _label in KIND_CHOICES]
    audited = [_AUDITED[k] for k in kinds if k in _AUDITED]
    if audited:
        events = AuditEvent.objects.filter(event_type__in=audited).select_related("actor")
        if narrowed.occurred_from is not None:
            events = events.filter(occurred_at__gte=narrowed.occurred_from)
        if narrowed.occurred_before is not None:
            events = events.filter(occurred_at__lt=narrowed.occurred_before)
        rows += [_from_audit(e) for e in events.order_by("-id")[:MOST_SECURITY_EVENTS]]
    if Kind.SIGN_IN_ADDRESS in kinds:
        failures = AccessAttempt.objects.all()
        if narrowed.occurred_from is not None:
            failures = failures.filter(attempt_time__gte=narrowed.occurred_from)
        if narrowed.occurred_before is not None:
            failures = failures.filter(attempt_time__lt=narrowed.occurred_before)
        latest = list(failures.order_by("-attempt_time")[:MOST_SECURITY_EVENTS])
        staff = dict(
            User.objects.filter(username__in={f.username for f in latest if f.username}, is_staff=True).values_list(
                "username", "pk"
            )
        )
        rows += [_from_axes(f, staff) for f in latest]
    rows.sort(key=lambda r: r.at, reverse=True)
    return rows[:MOST_SECURITY_EVENTS]


_KIND_OF = {str(v): k for k, v in _AUDITED.items()}


def _from_audit(event: AuditEvent) -> SecurityEvent:
    kind = _KIND_OF[event.event_type]
    extra = event.extra if isinstance(event.extra, dict) else {}
    # The system's codes are English msgids (gettext_noop): shown in the staff member's language.
    detail = [
        gettext(str(extra[k]))
        for k in ("failed_step", "outcome", "refusal", "page", "context", "scope", "form")
        if extra.get(k)
    ]
    client = ""
    if event.person_id is not None:
        client = _("person %(digest)s") % {"digest": _digest("person", str(event.person_id))}
    staff = f"#{event.actor_id} {event.actor.get_username()}" if event.actor is not None else ""
    return SecurityEvent(event.occurred_at, kind, str(_LABELS[kind]), staff, client, " · ".join(detail))


def _from_axes(failure: AccessAttempt, staff: dict[str, int]) -> SecurityEvent:
    named = staff.get(failure.username or "")
    who = f"#{named} {failure.username}" if named is not None else str(_("(not a staff account's name)"))
    detail = _("%(count)s failed sign-ins in a row, the last at this time") % {"count": failure.failures_since_start}
    if failure.failures_since_start >= settings.AXES_FAILURE_LIMIT:
        detail += " · " + str(_("locked out"))
    return SecurityEvent(
        failure.attempt_time,
        Kind.SIGN_IN_ADDRESS,
        str(_LABELS[Kind.SIGN_IN_ADDRESS]),
        who,
        mask_address(failure.ip_address),
        detail,
    )


def _digest(kind: str, value: str) -> str:
    return blind_index(f"security-view-{kind}", value)[:DIGEST_SHOWN]


def mask_address(address: str | None) -> str:
    """``203.0.113.0/24 · 3f9a01bc``: the network and a keyed digest prefix of the whole address."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return _digest("address", address)
    prefix = 24 if ip.version == 4 else 48  # noqa: PLR2004  # the usual allocations
    network = ipaddress.ip_network((ip, prefix), strict=False)
    return f"{network} · {_digest('address', str(ip))}"
