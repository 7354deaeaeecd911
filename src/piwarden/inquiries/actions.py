"""Write paths for consultation requests: the submission, and the assignment to a staff member.

The e-mails that follow it are actions of their own (:mod:`piwarden.inquiries.mail`), run by
the tasks (:mod:`piwarden.inquiries.tasks`) that the submission queues.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.inquiries.mail import PURPOSE
from piwarden.inquiries.models import CATEGORY, PERSONAL_FIELDS, Inquiry
from piwarden.inquiries.tasks import acknowledge_inquiry, notify_sales
from piwarden.people.actions import NewPerson, new_person, person_or_new
from piwarden.prepared import prepare_enqueue, prepare_insert
from piwarden.processing import gate
from piwarden.staff import permissions
from piwarden.staff.access import actor_of, record_refusal
from piwarden.staff.permissions import Capability


@dataclass(frozen=True)
class Submission:
    """A validated request (``ConsultationForm.to_submission``): its fields by name, and how it came."""

    values: Mapping[str, str]  # every one of REQUEST_FIELDS
    submission_token: uuid.UUID
    language: str
    consent_text: str
    age_statement: str = ""  # the age statement ticked on the form, as shown (policy §八)

    @property
    def email(self) -> str:
        return self.values["email"]

    @property
    def phone(self) -> str:
        return self.values["phone"]


def submit_inquiry(submission: Submission, *, also: Callable[[Inquiry], object] | None = None) -> tuple[Inquiry, bool]:
    """Store a consultation request with its consent; return (inquiry, created).

    One transaction, the gate's, holds the person, the consent given on the form, the
    encrypted request, their audit events and the two queued e-mails (the task backend writes
    to the same database, so the queue entries commit or roll back with the request: an
    acknowledged submission is never lost and never e-mailed twice for one row).  A person
    who erased or restricted their data is refused by the gate, which commits the refusal and
    raises :class:`~piwarden.processing.gate.ProcessingRefused`; nothing else is stored.

    A replayed form (same submission token) meets the token's unique index: the first
    request is returned and nothing is created.  The first attempt takes the e-mail for a new
    one (most requests come from people not known yet) and does not look it up: a known
    person's e-mail meets the unique index of the person's e-mail instead, and so do two
    first requests with one new e-mail; the second attempt looks the person up and finds them.

    ``also`` runs in the same transaction once the request is written: the page records the
    request's security event there (one commit, not two).
    """
    for look_up in (False, True):
        try:
            return _submit(submission, look_up=look_up, also=also), True
        except IntegrityError:
            first = Inquiry.objects.filter(submission_token=submission.submission_token).first()
            if first is not None:
                return first, False
            if look_up:
                raise
        except gate.ProcessingRefused as refused:
            if not look_up or refused.decision.reason != gate.ERASED:
                raise
            # The person found was erased between the look-up and the gate (the sweep of a rights
            # request never confirmed erases who nothing else holds): their e-mail's blind index
            # went with them, so this request is a new person's.
            return _submit(submission, look_up=False, also=also), True
    raise AssertionError("unreachable")


def _submit(submission: Submission, *, look_up: bool, also: Callable[[Inquiry], object] | None) -> Inquiry:
    # Prepare, then write: everything but the INSERTs happens before the gate opens its
    # transaction, which on SQLite holds the one write lock (every other request's write waits).
    found = (person_or_new if look_up else new_person)(email=submission.email, phone=submission.phone)
    person = found.person if isinstance(found, NewPerson) else found
    inquiry = Inquiry(
        person=person,
        data_key_id=person.data_key_id,
        submission_token=submission.submission_token,
        language=submission.language,
        age_statement=submission.age_statement,
        **submission.values,
    )
    # A new person's request is sealed now, under the key this act just made; a known person's
    # key is opened only once the gate allows the use, inside its transaction.
    sealed = prepare_insert(inquiry) if isinstance(found, NewPerson) else None
    queued = (prepare_enqueue(acknowledge_inquiry, str(inquiry.pk)), prepare_enqueue(notify_sales, str(inquiry.pk)))
    given = gate.GivenConsent(
        channel="web:consultation", language=submission.language, shown_text=submission.consent_text
    )
    with gate.processing(
        found,
        PURPOSE,
        categories={CATEGORY},
        use=gate.Use("inquiry.submit", actor_kind=ActorKind.VISITOR),
        consent=given,
    ):
        (sealed or prepare_insert(inquiry)).run()
        record_event(
            EventType.INQUIRY_SUBMITTED,
            actor_kind=ActorKind.VISITOR,
            person=person,
            purpose=PURPOSE,
            fields=PERSONAL_FIELDS,
            extra={"inquiry": inquiry.reference, "product": inquiry.product},
        )
        for task in queued:
            task.run()
        if also is not None:
            also(inquiry)
        return inquiry


class AssignRefused(Exception):
    """The assignment is not allowed or not possible: the message in the staff member's language."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def assign_inquiry(user: AbstractBaseUser | AnonymousUser, reference: str, *, to: User | None) -> None:
    """Give a consultation request to a staff member whose role answers them (sales see only theirs).

    Only a role that assigns requests may (the privacy officer); a refusal is recorded on its own
    before the caller hears of it, so call this outside any transaction.
    """
    if not permissions.may(user, Capability.ASSIGN_INQUIRIES):
        record_refusal(user, "inquiry_assign", gettext_noop("the role may not assign"), about=reference)
        raise AssignRefused(_("Your role may not assign consultation requests."))
    if to is None:
        raise AssignRefused(_("Choose the staff member to assign it to."), status=400)
    if not permissions.account_may(to, Capability.SEE_INQUIRIES):
        raise AssignRefused(_("That staff member does not answer consultation requests."), status=400)
    _assign(actor_of(user), reference, to)


@transaction.atomic(durable=True)
def _assign(actor: User | None, reference: str, assignee: User) -> None:
    inquiry = Inquiry.objects.select_for_update().select_related("person").filter(reference=reference).first()
    if inquiry is None:
        raise AssignRefused(_("No such request."), status=404)
    previous = inquiry.assigned_to_id
    inquiry.assigned_to = assignee
    inquiry.save(update_fields=["assigned_to"])
    record_event(
        EventType.INQUIRY_ASSIGNED,
        actor=actor,
        person=inquiry.person,
        purpose=PURPOSE,
        extra={"inquiry": inquiry.reference, "assigned_to": assignee.pk, "previously": previous},
    )
