"""The new-device alert to a staff member, as an action (read and render, send with no
transaction open, then record that it went out: :mod:`piwarden.inquiries.mail` says why).

The e-mail names the account and the time of the sign-in, in the staff member's console
language; nothing about the browser (it is not known in clear: :mod:`piwarden.staff.devices`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.mailing import send
from piwarden.staff.models import KnownDevice, preferred_language


def send_new_device_alert(device_id: str) -> str:
    device = KnownDevice.objects.select_related("user").get(pk=int(device_id))
    if device.alerted_at is not None:
        return "already sent"
    user = device.user
    if not user.email:
        return "no address"
    context = {
        "username": user.get_username(),
        "when": timezone.localtime(device.first_seen_at),
        "console_url": settings.PIWARDEN_SITE_URL.rstrip("/") + reverse("backoffice:inbox"),
    }
    with translation.override(preferred_language(user) or settings.LANGUAGE_CODE):
        subject = render_to_string("staff/email/new_device_subject.txt", context).strip()
        body = render_to_string("staff/email/new_device.txt", context)
    send(subject, body, [user.email], about=f"staff device {device.pk}")
    with transaction.atomic(durable=True):
        KnownDevice.objects.filter(pk=device.pk, alerted_at__isnull=True).update(alerted_at=timezone.now())
    return "sent"


@transaction.atomic(durable=True)
def record_mail_failure(device_id: str, *, task: str, attempts: int, error: str) -> None:
    """Every attempt failed: leave it in the audit log for the security team."""
    device = KnownDevice.objects.select_related("user").get(pk=int(device_id))
    record_event(
        EventType.MAIL_FAILED,
        actor=device.user,
        purpose="security",
        reason=error,
        extra={"device": device.pk, "attempts": attempts, "task": task},
    )
