"""The cessation notice e-mail: once per person, in their language, through the site's mailer.

Each notice is a :class:`~piwarden.cessation.models.CessationNotice` row, sent by the cycle every
direct notice shares (:func:`piwarden.people.notices.deliver`: purpose ``cessation_notice``, a legal
duty, PIPL 47(1)(2)); this module declares what is the cessation's own (:class:`CessationNotices`).

It claims: the row is marked taken (``claimed_at``) in the gate's transaction that reads the
address, before the message is sent; ``sent_at`` once the mail server accepted it (with one audit
event).  A second run, or a second process at the same time, finds the notice claimed and sends
nothing: a person never gets two.  A send the mail server refused puts the claim back (the next
round tries again).  A process that dies between sending and recording leaves the notice claimed and
not sent: it is not sent again by itself (the person may have it), and ``piwarden cessation status``
counts it as unconfirmed for the operator to decide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from piwarden.audit.log import EventType
from piwarden.cessation.models import CessationNotice
from piwarden.mailing import MailNotSent
from piwarden.people import notices
from piwarden.people.registry import CESSATION_NOTICE_PURPOSE
from piwarden.policy.declaration import load_declaration

# policy/declaration.toml: telling people the site ceases and their data is deleted (a legal duty).
PURPOSE = CESSATION_NOTICE_PURPOSE
NO_ADDRESS = "no address held"


@dataclass
class Round:
    """What one round of sending did."""

    sent: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class CessationNotices(notices.DirectNotices[CessationNotice]):
    model = CessationNotice
    purpose = PURPOSE
    use_name = "cessation.notice"
    sent_event = EventType.CESSATION_NOTICE_SENT
    waiting = Q(claimed_at__isnull=True, skipped="")
    unended = Q(sent_at__isnull=True, skipped="")
    claims = True
    related = ("cessation",)

    def reference(self, notice: CessationNotice) -> dict[str, Any]:
        return {"cessation": notice.cessation_id}

    def render(self, notice: CessationNotice, language: str) -> tuple[str, str]:
        with translation.override(language):
            context = {
                "ceases_on": notice.cessation.ceases_on,
                "policy": load_declaration(),
                "rights_url": settings.PIWARDEN_SITE_URL.rstrip("/") + reverse("site:rights"),
            }
            subject = render_to_string("cessation/email/notice_subject.txt", context).strip()
            body = render_to_string("cessation/email/notice.txt", context)
        return subject, body

    def about(self, notice: CessationNotice) -> str:
        return f"cessation notice {notice.pk}"

    def claimed(self) -> dict[str, Any]:
        return {"claimed_at": timezone.now()}

    def released(self) -> dict[str, Any]:
        return {"claimed_at": None, "failures": F("failures") + 1}

    def ended(self, outcome: str, reason: str) -> dict[str, Any]:
        if outcome == notices.SENT:
            return {"sent_at": timezone.now()}
        # Why no notice went out: the person was erased (the gate's reason), or no address is held.
        return {"skipped": f"refused: {reason}"[:40] if outcome == notices.REFUSED else NO_ADDRESS}


NOTICES = CessationNotices()


def send_notice(notice_id: int) -> str:
    """Send one notice, unless it was claimed already (:func:`piwarden.people.notices.deliver`)."""
    return notices.deliver(NOTICES, notice_id)


def send_pending(progress: Callable[[int, int], None] | None = None) -> Round:
    """Send every notice of the live cessation that nobody has claimed yet, one by one."""
    pending = notices.waiting_ids(NOTICES, cessation__live=True, cessation__execution_started_at__isnull=True)
    result = Round()
    for done, notice_id in enumerate(pending, start=1):
        try:
            outcome = send_notice(notice_id)
        except MailNotSent as exc:
            result.failed += 1
            result.errors.append(str(exc))
        else:
            if outcome == notices.SENT:
                result.sent += 1
            elif outcome != notices.TAKEN:
                result.skipped += 1
        if progress is not None:
            progress(done, len(pending))
    return result
