"""The direct notice of a material change (CHG-01): one e-mail per person and version.

:func:`send_change_notices` makes the version's notices (one per person whose contact details we
hold, as :mod:`piwarden.people.contacts` finds them: :func:`make_notices`, once) and sends each
still pending through the cycle every direct notice shares (:func:`piwarden.people.notices.deliver`:
read and render under the processing gate, send with no transaction open, then mark it sent);
:class:`ChangeNotices` declares what is this notice's own.  A notice marked sent is never sent
again, so a re-run or the retry after a failure (the mail server down half-way) sends only the
rest; the one window left is a crash between the mail server's acceptance and the mark, which sends
that one message again on the next run.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.mailing import MailNotSent
from piwarden.people import contacts, notices
from piwarden.policy.changes import KIND_NAMES
from piwarden.policy.declaration import load_declaration
from piwarden.policy.models import MaterialKind, PolicyVersion
from piwarden.revisions.models import ChangeNotice, NoticeOutcome

PURPOSE = "policy_change_notice"

__all__ = ["MailNotSent", "record_notices_failure", "send_change_notice", "send_change_notices"]

# How a row ended, in the outcomes of the table.
OUTCOMES = {
    notices.SENT: NoticeOutcome.SENT,
    notices.REFUSED: NoticeOutcome.REFUSED,
    notices.NO_ADDRESS: NoticeOutcome.NO_CONTACT,
}


class ChangeNotices(notices.DirectNotices[ChangeNotice]):
    model = ChangeNotice
    purpose = PURPOSE
    use_name = "policy.change_notice"
    sent_event = EventType.POLICY_NOTICE_SENT
    waiting = unended = Q(outcome=NoticeOutcome.PENDING)
    related = ("version",)

    def reference(self, notice: ChangeNotice) -> dict[str, Any]:
        return {"version": notice.version.number}

    def render(self, notice: ChangeNotice, language: str) -> tuple[str, str]:
        version = notice.version
        context = {
            "version": version,
            "notice": version.notice(language),
            "kinds": [KIND_NAMES[MaterialKind(k)] for k in version.kinds],  # lazy: in the person's language
            "policy": load_declaration(),
            "site_url": settings.PIWARDEN_SITE_URL,
        }
        with translation.override(language):
            subject = render_to_string("revisions/email/change_notice_subject.txt", context).strip()
            body = render_to_string("revisions/email/change_notice.txt", context)
        return subject, body

    def about(self, notice: ChangeNotice) -> str:
        return f"policy version {notice.version.number}"

    def ended(self, outcome: str, reason: str) -> dict[str, Any]:
        if outcome == notices.SENT:
            return {"outcome": NoticeOutcome.SENT, "sent_at": timezone.now()}
        return {"outcome": OUTCOMES[outcome]}  # refused by the gate (recorded there), or no contact held


NOTICES = ChangeNotices()


def send_change_notices(version_id: str) -> str:
    """Make the notices of a material version (once) and send every pending one; say how many went."""
    version = PolicyVersion.objects.get(pk=version_id)
    if not version.material:
        return "not a material change"
    make_notices(version)
    sent = 0
    for notice_id in notices.waiting_ids(NOTICES, version=version):
        sent += send_change_notice(str(notice_id)) == notices.SENT
    return f"{sent} sent"


def send_change_notice(notice_id: str) -> str:
    """Send one notice unless it went out or ended already (:func:`piwarden.people.notices.deliver`)."""
    return notices.deliver(NOTICES, notice_id)


@transaction.atomic(durable=True)
def make_notices(version: PolicyVersion) -> int:
    """One pending notice per person we can reach (:func:`piwarden.people.contacts.everyone`), once per
    version (a re-run adds nobody twice: a person of several sources comes more than once, one row)."""
    current = PolicyVersion.objects.select_for_update().get(pk=version.pk)
    if current.notices_queued_at is not None:
        return 0
    now = timezone.now()
    notices.create_once(ChangeNotice(version=current, person_id=p, created_at=now) for p in contacts.everyone())
    PolicyVersion.objects.filter(pk=current.pk).update(notices_queued_at=now)
    return ChangeNotice.objects.filter(version=current).count()


@transaction.atomic(durable=True)
def record_notices_failure(version_id: str, *, task: str, attempts: int, error: str) -> None:
    """Every attempt failed: leave it in the audit log, so that the operator sends the rest."""
    version = PolicyVersion.objects.get(pk=version_id)
    record_event(
        EventType.MAIL_FAILED,
        purpose=PURPOSE,
        reason=error,
        extra={"version": version.number, "attempts": attempts, "task": task},
    )
