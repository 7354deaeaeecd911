"""The rate limit's one write path besides its counters: a refusal, in the audit log.

The event names the scope only, never the client: the audit log is kept for years and the
client's address is personal information; the counters, which hold its keyed digest, are kept
for a day.  The security role reads these events on the security events page, and bursts of them
show an attack on a form without showing who."""

from __future__ import annotations

from django.db import transaction

from piwarden.audit.log import ActorKind, EventType, record_event


@transaction.atomic(durable=True)
def record_refusal(scope: str) -> None:
    record_event(EventType.RATE_LIMITED, actor_kind=ActorKind.VISITOR, purpose="security", extra={"scope": scope})
