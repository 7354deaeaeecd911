"""A request's device and software information, and the month's keys that protect it.

What is kept of a request (policy §一(I)1.2, "device information and software information"):

* the client's IP address, as the rate limit believes it (``ratelimit.limiter.client_ip``);
* its User-Agent header (cut to 500 characters);
* a **device signature**: HMAC-SHA256, under the month's random ``device_secret``, of coarse
  traits only: the browser's family and major version, the operating system's family, the first
  language the browser asks for, and the client's network (IPv4 /24, IPv6 /48).  It links the
  events of one browser on one network within a month (a client that submits a form fifty times),
  and nothing more: the traits are shared by many people, the key is this site's and changes every
  month, and each month's key is destroyed with the month's events, so the signature can neither
  be matched with another site's nor followed from one month to the next.  It is not a browser
  fingerprint (no canvas, fonts, screen or plug-ins: nothing is asked of the browser).

The address and the user agent are sealed (AEAD, Tink) under the month's data key with the row's
associated data, exactly as ``vault.fields.EncryptedTextField`` seals a person's fields; the
primitive is kept per process for the current month, so a request pays the encryption (~2 µs a
field) and no key look-up.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from tink import aead

from piwarden.ratelimit.limiter import client_ip
from piwarden.security.models import SecurityPeriod
from piwarden.vault import crypto

USER_AGENT_MAX = 500
SIGNATURE_HEX = 16  # 64 bits: tells a month's devices apart, no more

_BROWSER = re.compile(r"(Edg|OPR|Firefox|Chrome|Version)/(\d+)")
_BROWSER_NAMES = {"Edg": "Edge", "OPR": "Opera", "Version": "Safari"}
_PLATFORMS = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


@dataclass(frozen=True)
class PeriodKeys:
    starts_on: datetime.date
    period_id: uuid.UUID
    data_key_id: uuid.UUID
    primitive: aead.Aead
    device_secret: bytes


_lock = threading.Lock()
_current: PeriodKeys | None = None  # per process: the current month's keys
_pending: set[datetime.date] = set()  # months whose period this process made in a transaction not yet committed


def month_of(moment: datetime.datetime) -> datetime.date:
    return moment.astimezone(datetime.UTC).date().replace(day=1)


def period_keys(moment: datetime.datetime | None = None) -> PeriodKeys:
    """The keys of the month ``moment`` falls in (UTC), made on first use."""
    starts_on = month_of(moment or timezone.now())
    cached = _current
    if cached is not None and cached.starts_on == starts_on:
        return cached
    period = SecurityPeriod.objects.filter(starts_on=starts_on).select_related("data_key").first()
    made = period is None
    if period is None:
        period = _new_period(starts_on)
    primitive = crypto.unwrap(period.data_key)
    secret = primitive.decrypt(bytes(period.device_secret), _secret_ad(period.pk))
    keys = PeriodKeys(starts_on, period.pk, period.data_key_id, primitive, secret)
    # Kept for the process only once the period's row is committed: a caller's transaction that made
    # it (the month's first event, in a sign-in that then fails) may still roll it back.  A row found
    # is committed, unless this process made it in a transaction still open.
    if made:
        _pending.add(starts_on)
        transaction.on_commit(lambda: _keep(keys))
    elif starts_on not in _pending:
        _keep(keys)
    return keys


def _keep(keys: PeriodKeys) -> None:
    global _current  # noqa: PLW0603  # see period_keys
    with _lock:
        _current = keys
        _pending.discard(keys.starts_on)


def forget_period_keys() -> None:
    """Drop the cached keys (a period's key was destroyed, or a test emptied the database)."""
    global _current  # noqa: PLW0603  # see period_keys
    with _lock:
        _current = None
        _pending.clear()


def _new_period(starts_on: datetime.date) -> SecurityPeriod:
    try:
        with transaction.atomic():
            key = crypto.create_data_key()
            period = SecurityPeriod(starts_on=starts_on, data_key=key)
            period.device_secret = crypto.aead_for(key.id).encrypt(secrets.token_bytes(32), _secret_ad(period.pk))
            period.save(force_insert=True)
            return period
    except IntegrityError:  # another process made it first
        return SecurityPeriod.objects.select_related("data_key").get(starts_on=starts_on)


def _secret_ad(period_id: object) -> bytes:
    return f"{SecurityPeriod._meta.db_table}|{period_id}|device_secret".encode()


def coarse_traits(request: HttpRequest, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Browser family and major version, OS family, first language, network: shared by many people."""
    agent = request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX]
    found = _BROWSER.search(agent)
    browser = f"{_BROWSER_NAMES.get(found[1], found[1])} {found[2]}" if found else "other"
    platform = next((name for needle, name in _PLATFORMS if needle in agent), "other")
    language = request.META.get("HTTP_ACCEPT_LANGUAGE", "").split(",")[0].split(";")[0].strip().lower()[:20]
    prefix = 24 if address.version == 4 else 48  # noqa: PLR2004  # the usual allocations
    network = ipaddress.ip_network((address, prefix), strict=False)
    return f"{browser}|{platform}|{language}|{network}"


def signature(secret: bytes, traits: str) -> str:
    return hmac.new(secret, traits.encode(), hashlib.sha256).hexdigest()[:SIGNATURE_HEX]


@dataclass(frozen=True)
class ClientInfo:
    """What a request says about its device and software."""

    address: str
    user_agent: str
    traits: str

    @classmethod
    def of(cls, request: HttpRequest) -> ClientInfo:
        address = client_ip(request)
        agent = request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX]
        return cls(str(address), agent, coarse_traits(request, address))


def describe_traits(traits_agent: str) -> str:
    """The browser and system of a user agent, as the security role is shown them."""
    found = _BROWSER.search(traits_agent)
    browser = f"{_BROWSER_NAMES.get(found[1], found[1])} {found[2]}" if found else "other"
    platform = next((name for needle, name in _PLATFORMS if needle in traits_agent), "other")
    return f"{browser} · {platform}"
