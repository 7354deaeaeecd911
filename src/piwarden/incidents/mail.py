"""The notice to a person affected by an incident (PIPL 57, SEC-05; CHD-06 for guardians).

One message per :class:`~piwarden.incidents.models.Notice`, in Chinese then English, holding what
Art 57 asks: the categories of personal information involved (their declared names), the cause and
the possible harm; the remedial measures taken and what the person can do to reduce the harm; and
how to reach us (the declaration's controller, hotline and e-mail).

Each runs through the cycle every direct notice shares (:func:`piwarden.people.notices.deliver`):
in the processing gate's durable transaction (purpose ``incident_notice``, a statutory duty:
recorded), read the address and render, or return at once if the notice ended already; send, with
no transaction open; then, in a second durable transaction, record how it ended (``outcome``,
``sent_at``, and the audit event); :class:`IncidentNotices` declares what is this notice's own.
:func:`send_pending` walks the incident's notices not sent yet, so a worker that dies in the middle,
or a run that stops at a refused message, is finished by the next run without sending anybody a
second notice.  (Between the mail server's acceptance and the record there is a window of a few
milliseconds: a crash exactly there sends that one notice again, as every e-mail of the site may;
the exactly-once record is the notice row.)

The person's address is the one every notice to people reads (:func:`piwarden.people.contacts.address_of`:
their consultation request's, else their confirmed rights request's, else their account's).
Guardians' addresses come from :mod:`piwarden.people.guardians` (the children's app's guardian
requests); every notice is written in both languages, so a guardian gets the one message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.incidents.models import Incident, Notice, Recipient
from piwarden.people import contacts, guardians, notices
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate

PURPOSE = "incident_notice"
# The notice's own record; a person's address is read from piwarden.people.contacts' categories.
NOTICE_CATEGORY = "incident_notices"
LANGUAGES = ("zh-hans", "en")


def notice_context(incident: Incident, language: str) -> dict[str, object]:
    """What the notice says in ``language``: the same for the e-mail and the public page."""
    declaration = load_declaration()
    names = {c.id: c.name.get(language) for c in declaration.categories}
    texts = {part: by_language.get(language, "") for part, by_language in incident.notice.items()}
    with translation.override(language):
        page = settings.PIWARDEN_SITE_URL.rstrip("/") + reverse("site:incident_notice", args=[incident.slug])
    return {
        "incident": incident,
        "categories": [names.get(c, c) for c in incident.categories],
        "texts": texts,
        "controller": declaration.controller.name.get(language),
        "hotline": declaration.controller.hotline,
        "email": declaration.controller.email,
        "page": page if incident.published_at else "",
    }


def render_notice(incident: Incident, *, guardian: bool) -> tuple[str, str]:
    parts, subjects = [], []
    for language in LANGUAGES:
        with translation.override(language):
            context = {**notice_context(incident, language), "guardian": guardian}
            subjects.append(render_to_string("incidents/email/notice_subject.txt", context).strip())
            parts.append(render_to_string("incidents/email/notice.txt", context))
    return " / ".join(subjects), "\n\n----------------------------------------\n\n".join(parts)


class IncidentNotices(notices.DirectNotices[Notice]):
    model = Notice
    purpose = PURPOSE
    use_name = "incidents.notice_mail"
    waiting = unended = Q(outcome="")
    related = ("incident",)

    def reference(self, notice: Notice) -> dict[str, Any]:
        return {"incident": notice.incident.slug, "recipient": notice.recipient}

    def unreachable(self, notice: Notice) -> str:
        guardian = notice.recipient == Recipient.GUARDIAN
        return "no_guardian_source" if guardian and guardians.source() is None else ""

    def categories(self, notice: Notice) -> Collection[str]:
        source = _guardians(notice)
        return {NOTICE_CATEGORY, *(source.categories if source is not None else contacts.categories())}

    def recipients(self, notice: Notice, permit: gate.Permit) -> notices.Addressed | None:
        source = _guardians(notice)
        if source is None:
            return super().recipients(notice, permit)
        # A guardian asked twice: one message (written in both languages, as every incident's).
        return notices.Addressed(sorted(set(source.addresses(permit))), LANGUAGES[0])

    def render(self, notice: Notice, language: str) -> tuple[str, str]:
        return render_notice(notice.incident, guardian=notice.recipient == Recipient.GUARDIAN)

    def about(self, notice: Notice) -> str:
        return f"incident {notice.incident.slug} notice {notice.pk}"

    def ended(self, outcome: str, reason: str) -> dict[str, Any]:
        return {"outcome": outcome, "sent_at": timezone.now() if outcome == notices.SENT else None}

    def recorded(self, notice: Notice, outcome: str, reason: str) -> None:
        # Every outcome, each with the person and the reason (the register's account of the notices).
        record_event(
            EventType.INCIDENT_NOTICE_SENT if outcome == notices.SENT else EventType.INCIDENT_NOTICE_UNDELIVERABLE,
            actor_kind=ActorKind.SYSTEM,
            person=Person.objects.get(pk=notice.person_id),
            purpose=PURPOSE,
            reason=reason,
            extra={
                "incident": notice.incident.slug,
                "notice": notice.pk,
                "recipient": notice.recipient,
                "outcome": outcome,
            },
        )


def _guardians(notice: Notice) -> guardians.GuardianSource | None:
    return guardians.source() if notice.recipient == Recipient.GUARDIAN else None


NOTICES = IncidentNotices()


def send_pending(incident_id: str) -> str:
    """Send every notice of the incident not sent yet, in order; stops at the first that cannot go
    (``MailNotSent`` reaches the task, which tries again later)."""
    pending = notices.waiting_ids(NOTICES, incident_id=incident_id)
    outcomes = Counter(send_notice(notice_id) for notice_id in pending)
    return ", ".join(f"{outcome}: {count}" for outcome, count in sorted(outcomes.items())) or "nothing to send"


def send_notice(notice_id: int) -> str:
    """Send one notice unless it ended already (:func:`piwarden.people.notices.deliver`)."""
    return notices.deliver(NOTICES, notice_id)


@transaction.atomic(durable=True)
def record_mail_failure(incident_id: str, *, task: str, attempts: int, error: str) -> None:
    """Every attempt failed: the notices not sent stay pending in the register, and the failure in the audit log."""
    record_event(
        EventType.MAIL_FAILED, reason=error, extra={"incident": int(incident_id), "attempts": attempts, "task": task}
    )
