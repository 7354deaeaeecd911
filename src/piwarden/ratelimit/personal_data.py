"""The rate-limit counters in the registry of exporters and erasers (``piwarden.people.registry``).

A counter's bucket is a keyed digest of an IP address that is never stored, so no counter can
be tied to a person we know (we would need the address they used, which we do not keep): there
is nothing to export or erase per person.  Every counter is deleted a day after its window ends
(the housekeeping), whoever it counted.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop

from piwarden.people.registry import Subject, Unattributable, register

WHY = gettext_noop(
    "A keyed digest of an IP address we never keep, so it cannot be tied to anyone; every counter is "
    "deleted one day after its window ends."
)

register(
    "rate_limit_counters",
    subject=Subject.NOBODY,
    export=Unattributable(WHY),
    erase=Unattributable(WHY),
    module=__name__,
)
