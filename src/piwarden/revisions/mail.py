"""The direct notice of a material change (CHG-01): one e-mail per person and version.

:func:`send_change_notices` makes the version's notices (one per person whose contact details we
hold, as :mod:`piwarden.people.contacts` finds them: :func:`make_notices`, once) and sends each
still pending, in the way of every mail action here (``inquiries.mail``): read and render under
the processing gate, send with no transaction open, then mark it sent.  A notice marked sent is
never sent again, so a re-run or the retry after a failure (the mail server down half-way) sends
only the rest; the one window left is a crash between the mail server's acceptance and the mark,
which sends that one message again on the next run.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from piwarden.audit.log import EventType, record_event
from piwarden.mailing import MailNotSent, send
from piwarden.people import contacts
from piwarden.policy.changes import KIND_NAMES
from piwarden.policy.declaration import load_declaration
from piwarden.policy.models import MaterialKind, PolicyVersion
from piwarden.processing import gate
from piwarden.revisions.models import ChangeNotice, NoticeOutcome

PURPOSE = "policy_change_notice"

__all__ = ["MailNotSent", "record_notices_failure", "send_change_notice", "send_change_notices"]


def send_change_notices(version_id: str) -> str:
    """Make the notices of a material version (once) and send every pending one; say how many went."""
    version = PolicyVersion.objects.get(pk=version_id)
    if not version.material:
        return "not a material change"
    make_notices(version)
    sent = 0
    pending = ChangeNotice.objects.filter(version=version, outcome=NoticeOutcome.PENDING).order_by("pk")
    for notice_id in list(pending.values_list("pk", flat=True)):
        sent += send_change_notice(str(notice_id)) == "sent"
    return f"{sent} sent"


def send_change_notice(notice_id: str) -> str:
    notice = ChangeNotice.objects.select_related("version", "person").get(pk=notice_id)
    if notice.outcome != NoticeOutcome.PENDING:
        return notice.outcome
    version = notice.version
    use = gate.Use("policy.change_notice", fields=("email",), extra={"version": version.number})
    person = notice.person
    try:
        with gate.processing(person, PURPOSE, categories=contacts.categories(), use=use):
            address = contacts.address_of(person)
            if address is not None:
                language = "en" if address.language == "en" else "zh-hans"
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
    except gate.ProcessingRefused as refused:
        record_notice_unsent(notice, NoticeOutcome.REFUSED)
        return f"refused: {refused.decision.reason}"  # recorded by the gate
    if address is None:
        record_notice_unsent(notice, NoticeOutcome.NO_CONTACT)
        return NoticeOutcome.NO_CONTACT
    send(subject, body, [address.email], about=f"policy version {version.number}")
    record_notice_sent(notice, PURPOSE)
    return "sent"


# --- the direct notices -------------------------------------------------------------------------

BATCH = 1000


@transaction.atomic(durable=True)
def make_notices(version: PolicyVersion) -> int:
    """One pending notice per person we can reach (:func:`piwarden.people.contacts.everyone`), once per
    version (a re-run adds nobody twice)."""
    current = PolicyVersion.objects.select_for_update().get(pk=version.pk)
    if current.notices_queued_at is not None:
        return 0
    now = timezone.now()
    batch: list[ChangeNotice] = []
    for person_id in contacts.everyone():  # a person of several sources comes more than once: one row
        batch.append(ChangeNotice(version=current, person_id=person_id, created_at=now))
        if len(batch) >= BATCH:
            ChangeNotice.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    ChangeNotice.objects.bulk_create(batch, ignore_conflicts=True)
    PolicyVersion.objects.filter(pk=current.pk).update(notices_queued_at=now)
    return ChangeNotice.objects.filter(version=current).count()


@transaction.atomic(durable=True)
def record_notice_sent(notice: ChangeNotice, purpose: str) -> bool:
    """Mark ``notice`` sent (only if no other run did meanwhile), with its audit event."""
    marked = ChangeNotice.objects.filter(pk=notice.pk, outcome=NoticeOutcome.PENDING).update(
        outcome=NoticeOutcome.SENT, sent_at=timezone.now()
    )
    if marked:
        record_event(
            EventType.POLICY_NOTICE_SENT,
            person=notice.person,
            purpose=purpose,
            fields=["email"],
            extra={"version": notice.version.number},
        )
    return bool(marked)


@transaction.atomic(durable=True)
def record_notice_unsent(notice: ChangeNotice, outcome: NoticeOutcome) -> None:
    """Mark ``notice`` not to be sent: the gate refused (recorded there), or no contact is held any longer."""
    ChangeNotice.objects.filter(pk=notice.pk, outcome=NoticeOutcome.PENDING).update(outcome=outcome)


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
