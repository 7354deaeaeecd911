"""Write paths of children's protection (policy §八; law CHD-01, CHD-02, CHD-04).

* :func:`request_guardian_consent`: a child's data is kept only once a guardian consents.  Marks
  the person as a child's, stores the guardian's e-mail (encrypted under the child's data key)
  and queues the e-mail with the one-use link, in one transaction under the processing gate
  (purpose ``children_protection``, a statutory duty: PIPL 31).
* :func:`confirm_guardian_consent`: the guardian's *separate* consent, one record per purpose in
  the consent ledger (kind ``separate``, channel :data:`GUARDIAN_CHANNEL`: a guardian's consent
  for this child, with the text they were shown and the policy version and digest in force).
  Once committed, :data:`piwarden.children.signals.guardian_consented` is sent and the request's
  ``on_consent`` (a dotted path to a function of the person) is called.
* :func:`decline_guardian_consent`: the refusal, recorded; the child's data is erased by the
  task it queues, and :data:`piwarden.children.signals.guardian_declined` is sent.
* :func:`flag_child_data`: a staff member whose role may flag a person's data (a consultation
  request's, opened through ``inquiries.access``; an account's, once wired) as a child's collected
  without a guardian's consent; its erasure is queued in the same transaction.
The erasure itself is ``children.erasure.erase_unconsented_child_data``, run by the task
``children.tasks.erase_child_data`` that the refusal and the flag queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.children import signals
from piwarden.children.access import PURPOSE, GuardianLinkInvalid, locked_guardian_request
from piwarden.children.models import LINK_LIFETIME, ChildMark, GuardianRequest, GuardianRequestStatus, MarkReason
from piwarden.children.tasks import erase_child_data, send_guardian_mail
from piwarden.consent.actions import record_consent
from piwarden.consent.models import ConsentKind
from piwarden.inquiries.forms import check_mailbox
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate
from piwarden.staff import permissions
from piwarden.staff.access import actor_of, record_refusal
from piwarden.staff.permissions import Capability
from piwarden.vault.blind import normalise_email

logger = logging.getLogger(__name__)

# The consent ledger's channel of a guardian's consent given through the e-mailed link.
GUARDIAN_CHANNEL = "guardian:e-mail link"
# The purposes a guardian is asked to consent to when the caller names none: a consultation request.
DEFAULT_PURPOSES = ("respond_inquiry",)
CATEGORIES = {"guardian_contacts", "child_protection_records"}


class ChildProtectionRefused(Exception):
    """A staff action refused or impossible: the message in the staff member's language."""

    def __init__(self, message: str, *, status: int = HTTPStatus.FORBIDDEN) -> None:
        super().__init__(message)
        self.status = status


def _dotted(on_consent: str | Callable[..., Any] | None) -> str:
    if on_consent is None or on_consent == "":
        return ""
    if callable(on_consent):
        return f"{on_consent.__module__}.{on_consent.__qualname__}"
    import_string(on_consent)  # fails now, at the request, rather than when the guardian answers
    return on_consent


def request_guardian_consent(
    person: Person,
    guardian_email: str,
    language: str,
    *,
    purposes: Iterable[str] = DEFAULT_PURPOSES,
    on_consent: str | Callable[..., Any] | None = None,
) -> GuardianRequest:
    """Ask the guardian at ``guardian_email`` to consent, for the child ``person``, to ``purposes``.

    Any earlier request still open for the child is replaced (its link stops working).  The
    e-mail goes out from the task queued here, in ``language`` (``zh-hans`` or ``en``).
    ``on_consent``: a function of the person (or its dotted path) called once the guardian
    consents, besides the signal.  Raises ``ValueError`` for an undeclared purpose or an address
    that is not one, and :class:`~piwarden.processing.gate.ProcessingRefused` (recorded) when the
    gate refuses (an erased person).  Run it outside any transaction.
    """
    declaration = load_declaration()
    wanted = list(dict.fromkeys(purposes))
    if not wanted:
        raise ValueError("name at least one purpose the guardian is asked to consent to")
    for purpose in wanted:
        declaration.purpose(purpose)  # KeyError → the caller's mistake
    address = normalise_email(guardian_email)
    try:
        validate_email(address)
        check_mailbox(address)  # the consultation form's own check: a mailbox a person really has
    except ValidationError:
        raise ValueError("not an e-mail address a guardian can receive mail at") from None
    dotted = _dotted(on_consent)
    use = gate.Use("children.request_guardian_consent", actor_kind=ActorKind.VISITOR, fields=("guardian_email",))
    with gate.processing(person, PURPOSE, categories=CATEGORIES, use=use):
        now = timezone.now()
        ChildMark.objects.get_or_create(person=person, defaults={"reason": MarkReason.DECLARED, "marked_at": now})
        replaced = GuardianRequest.objects.filter(person=person, status=GuardianRequestStatus.PENDING).update(
            status=GuardianRequestStatus.SUPERSEDED, decided_at=now
        )
        request = GuardianRequest(
            person=person,
            data_key_id=person.data_key_id,
            guardian_email=address,
            language="en" if language.startswith("en") else "zh-hans",
            purposes=wanted,
            on_consent=dotted,
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
        request.save(force_insert=True)
        record_event(
            EventType.GUARDIAN_ASKED,
            actor_kind=ActorKind.VISITOR,
            person=person,
            purpose=PURPOSE,
            fields=["guardian_email"],
            extra={"request": str(request.pk), "purposes": wanted, "replaced": replaced},
        )
        send_guardian_mail.enqueue(str(request.pk))  # the task's row commits with the request
    return request


def _announce(signal: Any, request: GuardianRequest, call: str = "") -> None:
    person = Person.objects.get(pk=request.person_id)
    for receiver, result in signal.send_robust(sender=GuardianRequest, person=person, request=request):
        if isinstance(result, Exception):
            logger.error("children: a receiver of %s failed: %r", receiver, result, exc_info=result)
    if call:
        try:
            import_string(call)(person)
        except Exception:
            logger.exception("children: on_consent %s failed for guardian request %s", call, request.pk)


@transaction.atomic(durable=True)
def confirm_guardian_consent(token: str, *, shown_text: str, language: str) -> GuardianRequest:
    """The guardian consents, separately, to the request's purposes for the child.

    :class:`~piwarden.children.access.GuardianLinkInvalid` for a link that opens nothing (nothing
    is recorded).  The announcement (signal, ``on_consent``) runs once the transaction commits.
    """
    request = locked_guardian_request(token)
    person = Person.objects.select_for_update().get(pk=request.person_id)
    if person.is_erased:
        raise GuardianLinkInvalid
    consents = [
        record_consent(
            person,
            purpose,
            channel=GUARDIAN_CHANNEL,
            language=language,
            shown_text=shown_text,
            kind=ConsentKind.SEPARATE,
        )
        for purpose in request.purposes
    ]
    now = timezone.now()
    request.status, request.decided_at = GuardianRequestStatus.CONSENTED, now
    request.save(update_fields=["status", "decided_at"])
    ChildMark.objects.filter(person=person).update(guardian_consented_at=now, erasure_due_at=None)
    record_event(
        EventType.GUARDIAN_CONSENTED,
        actor_kind=ActorKind.VISITOR,
        person=person,
        purpose=PURPOSE,
        extra={"request": str(request.pk), "consents": [str(c.pk) for c in consents], "purposes": request.purposes},
    )
    transaction.on_commit(lambda: _announce(signals.guardian_consented, request, request.on_consent))
    return request


@transaction.atomic(durable=True)
def decline_guardian_consent(token: str) -> GuardianRequest:
    """The guardian refuses: recorded, and the child's data erased by the task queued here."""
    request = locked_guardian_request(token)
    person = Person.objects.select_for_update().get(pk=request.person_id)
    if person.is_erased:
        raise GuardianLinkInvalid
    now = timezone.now()
    request.status, request.decided_at = GuardianRequestStatus.DECLINED, now
    request.save(update_fields=["status", "decided_at"])
    ChildMark.objects.filter(person=person).update(erasure_due_at=now)
    record_event(
        EventType.GUARDIAN_DECLINED,
        actor_kind=ActorKind.VISITOR,
        person=person,
        purpose=PURPOSE,
        extra={"request": str(request.pk)},
    )
    erase_child_data.enqueue(str(person.pk))
    transaction.on_commit(lambda: _announce(signals.guardian_declined, request))
    return request


# --- staff: a child's data collected without a guardian's consent ------------------------------


def flag_child_data(user: AbstractBaseUser | AnonymousUser, person: Person, *, about: str = "") -> ChildMark:
    """Flag ``person``'s data as a child's collected without a guardian's consent; queue its erasure.

    Only a role that may flag (``Capability.FLAG_CHILD_DATA``); a refusal is recorded on its own
    before the caller hears of it, so call this outside any transaction.  A child for whom a
    guardian consented is not flagged (409): their data rests on that consent.  ``about`` names
    the object the flag was made on (a consultation request's reference), for the audit log.
    """
    if not permissions.may(user, Capability.FLAG_CHILD_DATA):
        record_refusal(user, "child_flag", gettext_noop("the role may not flag a child's data"), about=about)
        raise ChildProtectionRefused(_("Your role may not flag a child's data."))
    return _flag(actor_of(user), person, about)


@transaction.atomic(durable=True)
def _flag(actor: User | None, person: Person, about: str) -> ChildMark:
    locked = Person.objects.select_for_update().get(pk=person.pk)
    if locked.is_erased:
        raise ChildProtectionRefused(_("This person's data has been deleted already."), status=HTTPStatus.CONFLICT)
    now = timezone.now()
    mark, created = ChildMark.objects.select_for_update().get_or_create(
        person=locked,
        defaults={"reason": MarkReason.FLAGGED, "marked_at": now, "marked_by": actor, "erasure_due_at": now},
    )
    if not created:
        if mark.guardian_consented_at is not None:
            raise ChildProtectionRefused(
                _("A guardian has consented for this child: their data is not deleted by a flag."),
                status=HTTPStatus.CONFLICT,
            )
        mark.reason, mark.marked_by, mark.erasure_due_at = MarkReason.FLAGGED, actor, now
        mark.save(update_fields=["reason", "marked_by", "erasure_due_at"])
    record_event(
        EventType.CHILD_DATA_FLAGGED,
        actor=actor,
        person=locked,
        purpose=PURPOSE,
        extra={"about": about[:40]} if about else {},
    )
    erase_child_data.enqueue(str(locked.pk))  # committed with the flag; run by the worker at once
    return mark
