"""Write paths for consultation requests."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.consent.actions import record_consent
from piwarden.inquiries.models import CATEGORY, PERSONAL_FIELDS, Inquiry
from piwarden.people.actions import find_or_create_person
from piwarden.people.models import Person
from piwarden.policy import gate

PURPOSE = "respond_inquiry"


@dataclass(frozen=True)
class Submission:
    """A validated request (``ConsultationForm.to_submission``): its fields by name, and how it came."""

    values: Mapping[str, str]  # every one of REQUEST_FIELDS
    submission_token: uuid.UUID
    language: str
    consent_text: str

    @property
    def email(self) -> str:
        return self.values["email"]

    @property
    def phone(self) -> str:
        return self.values["phone"]


def submit_inquiry(submission: Submission) -> tuple[Inquiry, bool]:
    """Store a consultation request with its consent; return (inquiry, created).

    One transaction holds the person, the consent record, the encrypted
    request, their audit events and the queued acknowledgement (the task
    backend writes to the same database, so the queue entry commits or rolls
    back with the request: an acknowledged submission is never lost and never
    e-mailed twice for one row).  A replayed form (same submission token)
    returns the first request and creates nothing.
    """
    try:
        with transaction.atomic():
            person = find_or_create_person(email=submission.email, phone=submission.phone)
            if person.is_restricted:
                decision = gate.check(person, PURPOSE, category=CATEGORY)
                # The person asked us to stop: record the refusal (it commits) and store nothing else.
                record_event(
                    EventType.PROCESSING_REFUSED,
                    actor_kind=ActorKind.VISITOR,
                    person=person,
                    purpose=PURPOSE,
                    reason=decision.reason,
                    extra={"context": "inquiry.submit"},
                )
                refused: gate.ProcessingRefused | None = gate.ProcessingRefused(decision)
            else:
                refused = None
                inquiry = _store(person, submission)
    except IntegrityError:
        # The same form raced itself (double click): the first one won.
        return Inquiry.objects.get(submission_token=submission.submission_token), False
    if refused is not None:
        raise refused
    return inquiry, True


def _store(person: Person, submission: Submission) -> Inquiry:
    record_consent(
        person,
        PURPOSE,
        channel="web:consultation",
        language=submission.language,
        shown_text=submission.consent_text,
    )
    gate.require(person, PURPOSE, category=CATEGORY, context="inquiry.submit")
    inquiry = Inquiry(
        person=person,
        data_key_id=person.data_key_id,
        submission_token=submission.submission_token,
        language=submission.language,
        **submission.values,
    )
    inquiry.save(force_insert=True)
    record_event(
        EventType.INQUIRY_SUBMITTED,
        actor_kind=ActorKind.VISITOR,
        person=person,
        purpose=PURPOSE,
        fields=PERSONAL_FIELDS,
        extra={"inquiry": inquiry.reference, "product": inquiry.product},
    )
    from piwarden.inquiries.tasks import acknowledge_inquiry, notify_sales  # noqa: PLC0415  # tasks import this module

    acknowledge_inquiry.enqueue(str(inquiry.pk))
    notify_sales.enqueue(str(inquiry.pk))
    return inquiry
