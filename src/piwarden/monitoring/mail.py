"""The alert e-mail to the security role: once per alert (``Alert.mailed_at``), as the rights
reminders are (:func:`piwarden.rights.mail.send_alert`): render, send with no transaction open,
then record that it went out.  It holds no personal value: the rule, the counts, the times, the
staff account by id and the link to the alert in the staff console."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.mailing import send
from piwarden.monitoring.models import Alert
from piwarden.staff import permissions


def security_recipients() -> list[str]:
    """The e-mail addresses of the active staff whose role monitors security (the security auditors)."""
    users = permissions.accounts_that_may(permissions.Capability.MONITOR_SECURITY).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def send_alert(alert_id: str) -> str:
    alert = Alert.objects.get(pk=alert_id)
    if alert.mailed_at is not None:
        return "already sent"
    recipients = security_recipients()
    if not recipients:
        return "no recipient: no active security auditor has an e-mail address"
    context = {
        "alert": alert,
        "url": settings.PIWARDEN_SITE_URL.rstrip("/") + reverse("backoffice:alert", args=[alert.pk]),
    }
    with translation.override(settings.LANGUAGE_CODE):
        context["rule"] = alert.get_rule_display()
        subject = render_to_string("monitoring/email/alert_subject.txt", context).strip()
        body = render_to_string("monitoring/email/alert.txt", context)
    send(subject, body, recipients, about=f"alert {alert.pk}")
    with transaction.atomic(durable=True):
        Alert.objects.filter(pk=alert.pk, mailed_at__isnull=True).update(mailed_at=timezone.now())
    return "sent"


@transaction.atomic(durable=True)
def record_mail_failure(alert_id: str, *, task: str, attempts: int, error: str) -> None:
    """Every attempt failed: the alert stays in the staff console, and the failure in the audit log."""
    record_event(
        EventType.MAIL_FAILED, reason=error, extra={"alert": int(alert_id), "attempts": attempts, "task": task}
    )
