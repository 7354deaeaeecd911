"""Write paths of children's protection (policy §八; law CHD-01, CHD-02, CHD-04).

* :func:`request_guardian_consent`: nothing of a child is stored before a guardian consents
  (CHD-01).  What the child gave (an account's sign-up) and the guardian's e-mail are sealed under
  the request's own data key, linked to no person and indexed by nothing; the e-mail with the
  one-use link is queued in the same transaction.
* :func:`confirm_guardian_consent`: the guardian's *separate* consent.  The request's
  ``on_consent`` creates the child's data from the sealed sign-up; then one record per purpose in
  the consent ledger (kind ``separate``, channel :data:`GUARDIAN_CHANNEL`: a guardian's consent
  for this child, with the text they were shown and the policy version and digest in force), the
  child marked, the request's key destroyed.  Once committed,
  :data:`piwarden.children.signals.guardian_consented` is sent.
* :func:`decline_guardian_consent`: the refusal, recorded; the request's key is destroyed and the
  request deleted, so the child's sign-up is gone at once;
  :data:`piwarden.children.signals.guardian_declined` is sent.
* :func:`expire_guardian_requests`: the same for requests unanswered when their link expires (7
  days), run by the housekeeping (``piwarden.site.housekeeping``).
* :func:`flag_child_data`: a staff member whose role may flag a person's data (a consultation
  request's, opened through ``inquiries.access``; an account's, once wired) as a child's collected
  without a guardian's consent; its erasure is queued in the same transaction.
The erasure itself is ``children.erasure.erase_unconsented_child_data``, run by the task
``children.tasks.erase_child_data`` that the flag queues.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable, Iterable, Mapping
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
from piwarden.children.access import PURPOSE, GuardianLinkInvalid, locked_guardian_request, open_guardian_request
from piwarden.children.models import LINK_LIFETIME, ChildMark, GuardianRequest, GuardianRequestStatus, MarkReason
from piwarden.children.tasks import erase_child_data, send_guardian_mail
from piwarden.consent.actions import record_consent
from piwarden.consent.models import ConsentKind
from piwarden.inquiries.forms import check_mailbox
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.staff import permissions
from piwarden.staff.access import actor_of, record_refusal
from piwarden.staff.permissions import Capability
from piwarden.vault.blind import normalise_email
from piwarden.vault.crypto import destroy_data_key, new_data_key
from piwarden.vault.models import DataKey

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


def _dotted(on_consent: str | Callable[..., Any]) -> str:
    if callable(on_consent):
        return f"{on_consent.__module__}.{on_consent.__qualname__}"
    import_string(on_consent)  # fails now, at the request, rather than when the guardian answers
    return on_consent


def request_guardian_consent(
    sign_up: Mapping[str, str],
    guardian_email: str,
    language: str,
    *,
    on_consent: str | Callable[[dict[str, str]], Person | None],
    purposes: Iterable[str] = DEFAULT_PURPOSES,
) -> GuardianRequest:
    """Ask the guardian at ``guardian_email`` to consent to ``purposes`` for a child, storing nothing of the child.

    ``sign_up``: what the child gave (text values), sealed with the guardian's address under a data
    key of the request's own (CHD-01: no person, no account, no index until the guardian
    consents).  ``on_consent``: a function (or its dotted path) of that data, called once the
    guardian consents and before the consent is recorded, outside any transaction: it creates the
    child's data and returns their Person (or None when it cannot, e.g. the address has an account
    by then).  The e-mail goes out from the task queued here, in ``language`` (``zh-hans`` or
    ``en``).  Raises ``ValueError`` for an address that is not one, ``KeyError`` for an undeclared
    purpose, ``ImportError`` for an ``on_consent`` that does not exist.  Run it outside any transaction.
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
    key = new_data_key()  # the request's own: destroyed at the answer or the expiry
    now = timezone.now()
    request = GuardianRequest(
        data_key_id=key.pk,
        guardian_email=address,
        sign_up=json.dumps(dict(sign_up), ensure_ascii=False, sort_keys=True),
        language="en" if language.startswith("en") else "zh-hans",
        purposes=wanted,
        on_consent=dotted,
        created_at=now,
        expires_at=now + LINK_LIFETIME,
    )
    with transaction.atomic(durable=True):
        key.save(force_insert=True)
        request.save(force_insert=True)
        record_event(
            EventType.GUARDIAN_ASKED,
            actor_kind=ActorKind.VISITOR,
            purpose=PURPOSE,
            fields=["guardian_email", "sign_up"],
            extra={"request": str(request.pk), "purposes": wanted},
        )
        send_guardian_mail.enqueue(str(request.pk))  # the task's row commits with the request
    return request


def _announce(signal: Any, request: GuardianRequest, person: Person | None) -> None:
    for receiver, result in signal.send_robust(sender=GuardianRequest, person=person, request=request):
        if isinstance(result, Exception):
            logger.error("children: a receiver of %s failed: %r", receiver, result, exc_info=result)


def confirm_guardian_consent(token: str, *, shown_text: str, language: str) -> GuardianRequest:
    """The guardian consents, separately, to the request's purposes for the child.

    First the request's ``on_consent`` creates the child's data from the sealed sign-up (in its
    own write path: a person, an account); then, in one transaction, the consents are recorded
    (one separate consent per purpose, the guardian's channel), the person marked as a child's
    whose guardian consented, the guardian's e-mail re-sealed under the child's key and the
    request's key destroyed with the sign-up it sealed.  If the second step never happens, the
    data the first created is not usable (an account waits for ``guardian_consented``) and the
    request is still open: the guardian's next click, or the expiry, ends it.
    :class:`~piwarden.children.access.GuardianLinkInvalid` for a link that opens nothing, and
    when ``on_consent`` can create nothing (nothing is recorded).  Run it outside any transaction.
    """
    request = open_guardian_request(token)
    sealed = request.sign_up
    person = import_string(request.on_consent)(json.loads(sealed)) if sealed and request.person_id is None else None
    if person is None:
        raise GuardianLinkInvalid
    return _record_consent(token, person, shown_text=shown_text, language=language)


@transaction.atomic(durable=True)
def _record_consent(token: str, child: Person, *, shown_text: str, language: str) -> GuardianRequest:
    request = locked_guardian_request(token)
    person = Person.objects.select_for_update().get(pk=child.pk)
    if person.is_erased or request.person_id is not None:
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
    own_key = DataKey.objects.get(pk=request.data_key_id)
    guardian = request.guardian_email
    # Re-sealed under the child's key (the field encrypts at save): the request is the child's data now.
    request.person, request.data_key_id = person, person.data_key_id
    request.guardian_email, request.sign_up = guardian, None
    request.status, request.decided_at = GuardianRequestStatus.CONSENTED, now
    request.save(update_fields=["person", "data_key", "guardian_email", "sign_up", "status", "decided_at"])
    if own_key.pk != person.data_key_id:
        destroy_data_key(own_key)
    mark, created = ChildMark.objects.get_or_create(
        person=person, defaults={"reason": MarkReason.DECLARED, "marked_at": now, "guardian_consented_at": now}
    )
    if not created:
        ChildMark.objects.filter(pk=mark.pk).update(guardian_consented_at=now, erasure_due_at=None)
    record_event(
        EventType.GUARDIAN_CONSENTED,
        actor_kind=ActorKind.VISITOR,
        person=person,
        purpose=PURPOSE,
        extra={"request": str(request.pk), "consents": [str(c.pk) for c in consents], "purposes": request.purposes},
    )
    transaction.on_commit(lambda: _announce(signals.guardian_consented, request, person))
    return request


def _discard(request: GuardianRequest) -> None:
    """Destroy the request's own key (shredding the child's sign-up and the guardian's address) and delete it."""
    destroy_data_key(DataKey.objects.get(pk=request.data_key_id))
    GuardianRequest.objects.filter(pk=request.pk).delete()


@transaction.atomic(durable=True)
def decline_guardian_consent(token: str) -> GuardianRequest:
    """The guardian refuses: recorded, and the child's sealed sign-up destroyed with the request."""
    request = locked_guardian_request(token)
    if request.person_id is not None:  # consented already: answered
        raise GuardianLinkInvalid
    request.status, request.decided_at = GuardianRequestStatus.DECLINED, timezone.now()
    _discard(request)
    record_event(
        EventType.GUARDIAN_DECLINED,
        actor_kind=ActorKind.VISITOR,
        purpose=PURPOSE,
        extra={"request": str(request.pk), "erased": ["guardian_email", "sign_up"]},
    )
    transaction.on_commit(lambda: _announce(signals.guardian_declined, request, None))
    return request


def expire_guardian_requests(now: datetime.datetime) -> int:
    """Requests no guardian answered before their link expired: each one's key destroyed (the
    child's sealed sign-up and the guardian's address with it) and the request deleted, recorded
    as ``children.guardian_request_expired``.  For the housekeeping, in its transaction."""
    expired = list(GuardianRequest.objects.filter(person__isnull=True, expires_at__lte=now))
    for request in expired:
        _discard(request)
        record_event(
            EventType.GUARDIAN_REQUEST_EXPIRED,
            purpose=PURPOSE,
            extra={"request": str(request.pk), "expired_at": request.expires_at.isoformat()},
        )
    return len(expired)


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
