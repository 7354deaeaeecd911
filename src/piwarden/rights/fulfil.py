"""Fulfilment: what completing a request executes, kind by kind (issue 7 §4).

Staff confirm every execution by completing the request in the queue; nothing runs by itself
right after the person's verification.  Why: the one-time code proves that the requester reads
the e-mail address they gave, not that the data held under it is theirs to ask for (a guardian,
a relative of a deceased person, a shared or mistyped address), and an erasure cannot be undone.
A staff member reads the request and confirms, which the law allows ("promptly", PIPL 45-50)
and the 15-working-day clock bounds; the queue's reminders and escalation keep it prompt.

* access, copy: the archive of everything about the person is built by a task;
* deletion: the person is erased (every category's eraser, crypto-shredding, the ledger), after
  the completion e-mail went out (the address is unreadable after the erasure);
* restriction: processing is restricted (the gate then allows only what survives it);
* withdrawal: consent to the purpose staff confirm is withdrawn, and what rested on it alone deleted;
* correction: the values staff confirm are written everywhere they are held;
* explanation, complaint, cancellation: the written answer is the result;
* guardian of a child under 14 (PIPL 31): once staff name the child's record (by the address used
  for the child's account) and a right (any of the child's: access, copy, correction, deletion,
  restriction, withdrawal), the code checks that the requester's verified address is that of a
  guardian who consented for that child (the children's app's guardian source, read through the
  gate), then executes the right on the child's record as for a deceased person's; otherwise 400;
* deceased relative: once staff confirm the proof of the death and of the close relationship, and
  that the deceased left no other arrangement (PIPL 49), the right the relative asks for (access,
  copy, correction or deletion) is executed on the deceased's record, which staff identify by the
  deceased's e-mail address: the archive goes to the relative, the correction or the erasure is
  made; or, when nothing is held or the relative asked a question, the written answer.

Each execution is its own write path (a durable transaction with its audit event), run before
the completion is recorded; each is idempotent, so completing again after a crash in between
does nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.people import guardians
from piwarden.people.actions import CorrectionRefused, correct_person_data, erase_person, restrict_processing, withdraw
from piwarden.people.models import Person
from piwarden.people.registry import correctables
from piwarden.processing import gate
from piwarden.rights.access import PURPOSE, StaffRefused
from piwarden.rights.models import ActingAs, RequestKind, RequestStatus, RequestStep, RightsRequest
from piwarden.vault import blind


@dataclass(frozen=True)
class Fulfilment:
    """What staff confirm on completion, for the kinds that need it."""

    corrections: dict[str, str] = field(default_factory=dict)  # correction: declared field -> new value
    purpose: str = ""  # withdrawal: the consent-based purpose withdrawn
    deceased_checks: frozenset[str] = frozenset()  # a deceased relative's request: DECEASED_CHECKS confirmed
    # A request about someone else (a deceased person, a guardian's child): the right executed on
    # their record ("" = a written answer), which staff find by the e-mail address used for it.
    subject_right: str = ""
    subject_email: str = ""


# What staff confirm before answering a close relative of a deceased person (PIPL 49): the relative
# exercises the deceased's rights for their own lawful interests, unless the deceased arranged
# otherwise, so the death, the relationship and the absence of such an arrangement are checked
# first (an arrangement found: refuse, on the ground "the deceased person arranged otherwise").
DECEASED_CHECKS = ("proof_of_death", "proof_of_relationship", "no_other_arrangement")

# The rights a close relative may exercise over the deceased's information (PIPL 49).
DECEASED_RIGHTS = (RequestKind.ACCESS, RequestKind.COPY, RequestKind.CORRECTION, RequestKind.DELETION)


@dataclass(frozen=True)
class Executed:
    done: bool  # the right was executed (or is queued to be, for an archive or an erasure)
    what: str  # for the audit event: what ran ("archive", "erasure", ...; "answer" for a written one)
    subject: Person | None = None  # executed on this record, not the requester's (a deceased person's)
    right: str = ""  # ... and the right executed on it


def execute(actor: User, request: RightsRequest, fulfilment: Fulfilment) -> Executed:
    """Run the execution of ``request``'s kind that must happen before its completion is recorded.

    For a person acting for themself, on the requester's record.  A relative's request about a
    deceased person, or a guardian's about their child, names someone else's record, which staff
    identify by its e-mail address (:func:`_on_record`).  Any other request's answer is written.
    Bad input (no purpose, a correction the form would refuse) raises :class:`StaffRefused` (400)
    and nothing is done.
    """
    if request.kind == RequestKind.DECEASED_RELATIVE:
        return _for_deceased(actor, request, fulfilment)
    if request.acting_as == ActingAs.GUARDIAN:
        return _for_child(actor, request, fulfilment)
    if request.acting_as != ActingAs.SELF:
        return Executed(done=False, what="answer")
    person, reference = request.person, request.reference
    if request.kind == RequestKind.RESTRICTION:
        restrict_processing(person, by=actor, reference=reference)
        return Executed(done=True, what="restriction")
    if request.kind == RequestKind.WITHDRAWAL:
        _withdraw(person, fulfilment.purpose, reference)
        return Executed(done=True, what="withdrawal")
    if request.kind == RequestKind.CORRECTION:
        _correct(actor, person, fulfilment.corrections, reference)
        return Executed(done=True, what="correction")
    if request.kind == RequestKind.DELETION:
        return Executed(done=False, what="erasure after the completion e-mail")
    if request.kind in _AFTER_COMPLETION:
        return Executed(done=True, what="archive")  # queued in the completion's transaction
    return Executed(done=False, what="answer")


def _withdraw(person: Person, purpose: str, reference: str) -> None:
    if not purpose:
        raise StaffRefused(_("Choose the purpose whose consent is withdrawn."), status=400)
    try:
        withdraw(person, purpose, channel="rights_request", reference=reference)
    except ValueError:
        raise StaffRefused(_("Choose the purpose whose consent is withdrawn."), status=400) from None


def _correct(actor: User, person: Person, corrections: dict[str, str], reference: str) -> None:
    if not corrections:
        raise StaffRefused(_("Give the corrected values the person asked for."), status=400)
    try:
        correct_person_data(person, corrections, by=actor, reference=reference)
    except CorrectionRefused as refused:
        raise StaffRefused(str(refused), status=400) from None


@dataclass(frozen=True)
class _Whom:
    """Whose record a request about someone else names, and what staff are told when it goes wrong."""

    record: str  # for the audit event: "the deceased's record", "the child's record"
    asked_by: str  # for the erasure's reason: who asked
    rights: tuple[str, ...]  # the rights the requester may exercise on it
    choose_right: Any  # (lazy) texts for staff: no right among ``rights`` chosen,
    no_email: Any  # ... no address given,
    own_email: Any  # ... the requester's own address given


DECEASED_RECORD = _Whom(
    record="the deceased's record",
    asked_by="a close relative of the deceased",
    rights=DECEASED_RIGHTS,
    choose_right=gettext_lazy("Choose the right the relative asks to exercise."),
    no_email=gettext_lazy("Give the e-mail address the deceased person used, to find their record."),
    own_email=gettext_lazy(
        "That address is the requester's own: a request about a deceased person names someone else."
    ),
)

# The rights a guardian exercises for a child under 14 (PIPL 31, 44-47): all of the child's own.
GUARDIAN_RIGHTS = (*DECEASED_RIGHTS, RequestKind.RESTRICTION, RequestKind.WITHDRAWAL)

CHILD_RECORD = _Whom(
    record="the child's record",
    asked_by="the child's guardian",
    rights=GUARDIAN_RIGHTS,
    choose_right=gettext_lazy("Choose the right the guardian asks to exercise for the child."),
    no_email=gettext_lazy("Give the e-mail address used for the child's account, to find the child's record."),
    own_email=gettext_lazy("That address is the requester's own: a guardian's request names the child's record."),
)


def _for_deceased(actor: User, request: RightsRequest, fulfilment: Fulfilment) -> Executed:
    """PIPL 49: the checks first; then the right the relative asked for, on the deceased's record."""
    if not set(DECEASED_CHECKS) <= fulfilment.deceased_checks:
        raise StaffRefused(
            _(
                "Before answering a request about a deceased person, confirm that you have seen proof of the "
                "death and of the close relationship, and that the deceased left no other arrangement. If they "
                "did, refuse the request on that ground instead."
            ),
            status=400,
        )
    checked = "death, relationship and no other arrangement checked"
    if not fulfilment.subject_right:
        return Executed(done=False, what=f"answer; {checked}")
    subject = _subject_record(request, fulfilment, DECEASED_RECORD)
    return _on_record(actor, request, subject, fulfilment, whom=DECEASED_RECORD, checked=checked)


def _for_child(actor: User, request: RightsRequest, fulfilment: Fulfilment) -> Executed:
    """A guardian acts for a child under 14 (PIPL 31): the code, not staff, checks that the requester
    is the child's guardian; then the right the guardian asked for, on the child's record."""
    if not fulfilment.subject_right:
        return Executed(done=False, what="answer")
    child = _subject_record(request, fulfilment, CHILD_RECORD)
    _require_guardian(actor, request, child)
    return _on_record(actor, request, child, fulfilment, whom=CHILD_RECORD, checked="guardian's consent checked")


def _require_guardian(actor: User, request: RightsRequest, child: Person) -> None:
    """The requester's verified address is one a guardian of ``child`` consented from (the children's
    app's guardian source, read through the gate); otherwise refuse, nothing done.

    A refusal by the gate says nothing about who the requester is, so it is answered with the
    gate's own reason, never as "not a guardian" (a restricted child keeps their guardians)."""
    refused = StaffRefused(
        _(
            "The requester is not a guardian who consented for the child with that e-mail address, so nothing "
            "was done. Check the child's address with the requester, or refuse the request on the ground "
            "that their authority could not be verified."
        ),
        status=400,
    )
    source = guardians.source()
    if source is None or child.pk not in source.minors([child.pk]):
        raise refused
    use = gate.Use("rights.guardian_check", actor=actor, extra={"request": request.reference})
    try:
        with gate.processing(child, PURPOSE, categories=source.categories, use=use) as permit:
            addresses = source.addresses(permit)
    except gate.ProcessingRefused as gated:
        reason = _(gated.decision.reason)
        raise StaffRefused(_("The processing gate refused: %(reason)s.") % {"reason": reason}) from None
    requester = request.person.email_index
    if not requester or requester not in {blind.email_index(address) for address in addresses}:
        raise refused


def _on_record(
    actor: User, request: RightsRequest, subject: Person, fulfilment: Fulfilment, *, whom: _Whom, checked: str
) -> Executed:
    """Execute ``fulfilment.subject_right`` on ``subject``'s record, as for the person themself; an
    access or a copy is the archive of that record, built for the requester after the completion."""
    right, reference = fulfilment.subject_right, request.reference
    if right == RequestKind.DELETION:
        reason = f"Rights request {reference}: deletion asked by {whom.asked_by}, confirmed"
        erase_person(subject, reason=reason, by=actor, reference=reference)
        what = "erasure"
    elif right == RequestKind.CORRECTION:
        _correct(actor, subject, fulfilment.corrections, reference)
        what = "correction"
    elif right == RequestKind.RESTRICTION:
        restrict_processing(subject, by=actor, reference=reference)
        what = "restriction"
    elif right == RequestKind.WITHDRAWAL:
        _withdraw(subject, fulfilment.purpose, reference)
        what = "withdrawal"
    else:
        what = "archive"
    return Executed(done=True, what=f"{what} of {whom.record}; {checked}", subject=subject, right=right)


def _subject_record(request: RightsRequest, fulfilment: Fulfilment, whom: _Whom) -> Person:
    """The record a request about someone else names, found by the e-mail address used for it (its
    blind index, as any look-up); the right asked for checked first, so a bad one finds nothing."""
    if fulfilment.subject_right not in whom.rights:
        raise StaffRefused(str(whom.choose_right), status=400)
    email = fulfilment.subject_email.strip()
    if not email:
        raise StaffRefused(str(whom.no_email), status=400)
    subject = Person.objects.filter(email_index=blind.email_index(email)).first()
    if subject is None:  # an erased person has no index left to be found by
        raise StaffRefused(
            _(
                "No personal information is held under that e-mail address. Check the address with the "
                "requester, or complete the request with a written answer saying that nothing is held."
            ),
            status=400,
        )
    if subject.pk == request.person_id:
        raise StaffRefused(str(whom.own_email), status=400)
    return subject


_AFTER_COMPLETION: dict[str, Callable[[RightsRequest], None]] = {}


def on_completion(kinds: Iterable[str], hook: Callable[[RightsRequest], None]) -> None:
    """Register what a completion of these kinds queues in its transaction (``RightsConfig.ready``:
    the archive's build, whose module imports rights.actions and so cannot be imported from here)."""
    for kind in kinds:
        _AFTER_COMPLETION[kind] = hook


def after_completion(request: RightsRequest, executed: Executed) -> None:
    """In the completion's transaction: queue what runs after it (for access and copy, the archive)."""
    hook = _AFTER_COMPLETION.get(request.executed_as)
    if hook is not None and executed.done and (request.acting_as == ActingAs.SELF or request.subject_id):
        hook(request)


def after_step_mail(step_id: str) -> None:
    """After a step's e-mail went out (or finally failed): a completed deletion now erases the person
    (every category's eraser, the crypto-shredding, the erasure ledger: ``people.actions.erase_person``).

    After, not before: the address the completion goes to is unreadable once the person is erased.
    Idempotent: an erased person is not erased again, and the request is marked once."""
    step = RequestStep.objects.select_related("request__person").get(pk=step_id)
    request = step.request
    if step.status != RequestStatus.COMPLETED or request.kind != RequestKind.DELETION:
        return
    if request.acting_as != ActingAs.SELF or request.fulfilled_at is not None:
        return
    erase_person(request.person, reason=f"Rights request {request.reference}: deletion asked by the person, confirmed")
    _mark_fulfilled(request.pk, "erasure")


@transaction.atomic(durable=True)
def _mark_fulfilled(request_id: uuid.UUID, what: str) -> None:
    request = RightsRequest.objects.select_for_update().select_related("person").get(pk=request_id)
    if request.fulfilled_at is not None:
        return
    request.fulfilled_at = timezone.now()
    request.save(update_fields=["fulfilled_at"])
    record_event(
        EventType.RIGHTS_FULFILLED,
        actor_kind=ActorKind.SYSTEM,
        person=request.person,
        purpose=PURPOSE,
        extra={"request": request.reference, "executed": what},
    )


def correctable_fields() -> list[tuple[str, str]]:
    """(declared field, label) of what a correction may change, as its model names it."""
    fields = []
    for name in sorted(correctables()):
        app_label, model, field_name = name.split(".")
        label = apps.get_model(app_label, model)._meta.get_field(field_name).verbose_name
        fields.append((name, f"{label} ({name})"))
    return fields


ANSWER = gettext_lazy("Completing sends your written result to the person; nothing else runs.")
EXECUTES: dict[str, Any] = {
    RequestKind.RESTRICTION: gettext_lazy(
        "Completing restricts the processing of the person's data now (only storage and security go on), "
        "then sends your result."
    ),
    RequestKind.WITHDRAWAL: gettext_lazy(
        "Completing withdraws the consent for the purpose you choose and deletes what was held on it alone, "
        "then sends your result."
    ),
    RequestKind.CORRECTION: gettext_lazy(
        "Completing writes the values you confirm below everywhere they are held, then sends your result."
    ),
    RequestKind.ACCESS: gettext_lazy(
        "Completing prepares the archive of everything about the person (in the background) and sends your "
        "result with the link to it; it can be downloaded for 5 days after the person verifies again."
    ),
    RequestKind.COPY: gettext_lazy(
        "Completing prepares the archive of everything about the person (in the background) and sends your "
        "result with the link to it; it can be downloaded for 5 days after the person verifies again."
    ),
    RequestKind.DELETION: gettext_lazy(
        "Completing sends your result, then erases the person's data for good. This cannot be undone."
    ),
}


DECEASED = gettext_lazy(
    "Completing first checks what you confirm below. If you choose a right, it is executed on the deceased's "
    "record, found by the e-mail address they used: an archive for the relative, the correction, or the "
    "erasure for good. Then your result is sent to the relative."
)


GUARDIAN = gettext_lazy(
    "Completing with a right chosen below first checks that the requester's verified e-mail address is that of "
    "a guardian who consented for the child whose account uses the address you give; if not, nothing is done. "
    "The right is then executed on the child's record: an archive for the guardian, the correction, the "
    "restriction, the withdrawal of consent or the erasure for good. Then your result is sent to the guardian."
)


def describe(request: RightsRequest) -> str:
    """What completing this request does, for the staff member about to confirm it."""
    if request.kind == RequestKind.DECEASED_RELATIVE:
        return str(DECEASED)
    if request.acting_as == ActingAs.GUARDIAN:
        return str(GUARDIAN)
    if request.acting_as != ActingAs.SELF:
        return str(ANSWER)
    return str(EXECUTES.get(request.kind, ANSWER))
