"""What the monitoring keeps about staff members: the alerts that concern them, and the notes
auditors wrote when acknowledging alerts (``piwarden.people.registry``)."""

from __future__ import annotations

from collections.abc import Iterator

from django.contrib.auth.models import User
from django.db.models import Q
from django.utils.translation import gettext_noop

from piwarden.monitoring.models import Alert
from piwarden.people.registry import Keeps, Record, Subject, register


def export_alerts(user: User) -> Iterator[Record]:
    alerts = Alert.objects.filter(Q(staff=user) | Q(acknowledged_by=user)).order_by("raised_at", "id")
    for alert in alerts:
        yield {
            "alert": alert.pk,
            "rule": alert.rule,
            "concerns_you": alert.staff_id == user.pk,
            "events": alert.events,
            "first_seq": alert.first_seq,
            "last_seq": alert.last_seq,
            "first_at": alert.first_at.isoformat(),
            "last_at": alert.last_at.isoformat(),
            "raised_at": alert.raised_at.isoformat(),
            "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
            "your_note": alert.note if alert.acknowledged_by_id == user.pk else None,
        }


register(
    "staff_security_alerts",
    subject=Subject.STAFF,
    export=export_alerts,
    erase=Keeps(
        gettext_noop(
            "Alerts stand on the audit log's events (PIPL 51: accounting for every access) and are kept as long "
            "as those events are."
        )
    ),
    module=__name__,
)
