"""What the security app keeps, exported and erased (``piwarden.people.registry``).

* ``security_events``: the device and software information of a person's consultation and rights
  requests (the events tied to them): exported decrypted; **kept** on erasure, as the law keeps
  network logs six months (CSL 21(3), PIPL 47 para 2: only stored and kept secure), and deleted
  by the housekeeping 184 days after the event.  They are sealed under the month's key, not the
  person's, so the erasure's crypto-shredding does not cut the legal period short.
* ``security_refusals``: refusals by the risk rules and the reviews asked for them.  A refusal
  comes before anyone is known (a rate limit refuses a request it has not read), so it is tied to
  no person: it is found only by the reference the refused browser was shown.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet, UUIDField
from django.utils.translation import gettext_noop

from piwarden.people.registry import Keeps, Record, Subject, Unattributable, Whose, register
from piwarden.prepared import Param, PreparedSelect
from piwarden.processing.gate import Permit
from piwarden.security.models import SecurityEvent
from piwarden.vault.fields import encrypted_field, open_value

CHUNK = 500
_ADDRESS, _AGENT = encrypted_field(SecurityEvent, "address"), encrypted_field(SecurityEvent, "user_agent")


def events(person: Whose) -> QuerySet[SecurityEvent]:
    return SecurityEvent.objects.filter(person=person)


_EVENTS = PreparedSelect(
    lambda: (
        events(Param("person", UUIDField()))
        .order_by("occurred_at", "id")
        .values_list("id", "data_key_id", "occurred_at", "kind", "about", "device", "address", "user_agent")
    )
)


def export_security_events(permit: Permit) -> Iterator[Record]:
    for pk, key, occurred_at, kind, about, device, address, agent in _EVENTS.rows(person=permit.person.pk, chunk=CHUNK):
        yield {
            "occurred_at": occurred_at.isoformat(),
            "kind": kind,
            "about": about,
            "ip_address": open_value(_ADDRESS, pk, key, address),
            "user_agent": open_value(_AGENT, pk, key, agent),
            "device_signature": device,
        }


KEPT = gettext_noop(
    "Network logs are kept at least six months as the Cybersecurity Law requires (PIPL 47 para 2: only "
    "stored and kept secure); they are deleted 184 days after the event."
)
register(
    "security_events",
    subject=Subject.VISITOR,
    export=export_security_events,
    erase=Keeps(KEPT),
    module=__name__,
    rows=events,
)
# The same rows' times, kinds and device signatures: exported with the values above.
register(
    "security_event_records",
    subject=Subject.VISITOR,
    export=lambda permit: iter(()),
    erase=Keeps(KEPT),
    module=__name__,
)

WHY = gettext_noop(
    "A refusal comes before anyone is known, so it is tied to no person we can name: only the browser that was "
    "refused holds its reference. Every refusal is deleted 184 days after it (or after its review)."
)
register(
    "security_refusals", subject=Subject.NOBODY, export=Unattributable(WHY), erase=Unattributable(WHY), module=__name__
)
