"""The cessation notice e-mail: once per person, in their language, through the site's mailer.

Each notice runs in three steps, as the consultation's e-mails do (:mod:`piwarden.inquiries.mail`),
so that no transaction is open while the mail server talks:

1. in the gate's durable transaction (purpose ``cessation_notice``, a legal duty: PIPL 47(1)(2)),
   claim the notice (only if nobody has: ``claimed_at`` was empty), read the person's address and
   language (:mod:`piwarden.people.contacts`) and render the message;
2. send, with no transaction open;
3. in a second durable transaction, record that it went out (``sent_at``, one audit event:
   :func:`piwarden.cessation.actions.record_notice_sent`).

A second run, or a second process at the same time, finds the notice claimed and sends nothing:
a person never gets two.  A send the mail server refused puts the claim back (the next round
tries again).  A process that dies between steps 2 and 3 leaves the notice claimed and not sent:
it is not sent again by itself (the person may have it), and ``piwarden cessation status`` counts
it as unconfirmed for the operator to decide.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from piwarden.cessation.actions import record_notice_sent
from piwarden.cessation.models import CessationNotice
from piwarden.mailing import MailNotSent, send
from piwarden.people import contacts
from piwarden.people.models import Person
from piwarden.people.registry import CESSATION_NOTICE_PURPOSE
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate

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


def send_notice(notice_id: int) -> str:
    """Send one notice, unless it was claimed already; 'sent', 'claimed already', or why not."""
    notice = CessationNotice.objects.select_related("cessation").get(pk=notice_id)
    if notice.claimed_at is not None or notice.skipped:
        return "claimed already"
    use = gate.Use("cessation.notice", fields=("email",), extra={"cessation": notice.cessation_id})
    person = functools.partial(Person.objects.get, pk=notice.person_id)  # read in the gate's transaction
    try:
        with gate.processing(person, PURPOSE, categories=contacts.categories(), use=use) as permit:
            claimed = CessationNotice.objects.filter(pk=notice.pk, claimed_at__isnull=True, skipped="").update(
                claimed_at=timezone.now()
            )
            if not claimed:  # another run was quicker
                return "claimed already"
            address = contacts.address_of(permit.person)
            if address is None:
                CessationNotice.objects.filter(pk=notice.pk).update(skipped=NO_ADDRESS)
                return NO_ADDRESS
            subject, body = _render(notice, address.language)
    except gate.ProcessingRefused as refused:  # recorded by the gate (an erased person, say)
        _skip(notice, f"refused: {refused.decision.reason}"[:40])
        return f"refused: {refused.decision.reason}"
    try:
        send(subject, body, [address.email], about=f"cessation notice {notice.pk}")
    except MailNotSent:
        _release(notice)
        raise
    record_notice_sent(notice)
    return "sent"


def _render(notice: CessationNotice, language: str) -> tuple[str, str]:
    language = "en" if language == "en" else "zh-hans"
    with translation.override(language):
        context = {
            "ceases_on": notice.cessation.ceases_on,
            "policy": load_declaration(),
            "rights_url": settings.PIWARDEN_SITE_URL.rstrip("/") + reverse("site:rights"),
        }
        subject = render_to_string("cessation/email/notice_subject.txt", context).strip()
        body = render_to_string("cessation/email/notice.txt", context)
    return subject, body


@transaction.atomic(durable=True)
def _skip(notice: CessationNotice, why: str) -> None:
    CessationNotice.objects.filter(pk=notice.pk, sent_at__isnull=True).update(skipped=why)


@transaction.atomic(durable=True)
def _release(notice: CessationNotice) -> None:
    CessationNotice.objects.filter(pk=notice.pk, sent_at__isnull=True).update(
        claimed_at=None, failures=F("failures") + 1
    )


def send_pending(progress: Callable[[int, int], None] | None = None) -> Round:
    """Send every notice of the live cessation that nobody has claimed yet, one by one."""
    pending = list(
        CessationNotice.objects.filter(
            cessation__live=True, cessation__execution_started_at__isnull=True, claimed_at__isnull=True, skipped=""
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    result = Round()
    for done, notice_id in enumerate(pending, start=1):
        try:
            outcome = send_notice(notice_id)
        except MailNotSent as exc:
            result.failed += 1
            result.errors.append(str(exc))
        else:
            if outcome == "sent":
                result.sent += 1
            elif outcome != "claimed already":
                result.skipped += 1
        if progress is not None:
            progress(done, len(pending))
    return result
