"""Reads of children's protection: the guardian's link, and whether a person's data is a child's.

* :func:`link_token` / :func:`open_guardian_request`: the guardian's one-use link carries the
  request's id signed with the site's key (``django.core.signing``, its own salt), so nothing
  secret is stored and a forged or altered link opens nothing.  A request already answered,
  replaced by a newer one or past its expiry opens nothing either (:class:`GuardianLinkInvalid`).
  The guardian's page shows no personal data: the purposes asked for and the categories they
  cover come from the declaration.
* :func:`is_child` / :func:`guardian_has_consented`: for other apps (the accounts app, at merge).
* :func:`record_child_opening`: the audit row of a staff member opening a child's data (CHD-03),
  written by the consultation read path (``inquiries.access``) when it opens a marked person's
  request; the reveal of its fields is audited by that path already.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing
from django.db import transaction

from piwarden.audit.log import EventType, record_event
from piwarden.children.models import ChildMark, GuardianRequest
from piwarden.people.models import Person
from piwarden.staff.access import actor_of

_SALT = "piwarden.children.guardian-link"
PURPOSE = "children_protection"
# The category of the guardian's e-mail address (the request's ``guardian_email``).
CONTACTS = "guardian_contacts"


class GuardianLinkInvalid(Exception):
    """The link is forged, damaged, answered already, replaced or expired."""


def link_token(request: GuardianRequest) -> str:
    return signing.dumps(str(request.pk), salt=_SALT, compress=False)


def _request_id(token: str) -> str:
    try:
        value = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        raise GuardianLinkInvalid from None
    if not isinstance(value, str):
        raise GuardianLinkInvalid
    return value


def open_guardian_request(token: str) -> GuardianRequest:
    """The open request this link names, or :class:`GuardianLinkInvalid`."""
    request = GuardianRequest.objects.select_related("person").filter(pk=_request_id(token)).first()
    if request is None or not request.is_open or (request.person is not None and request.person.is_erased):
        raise GuardianLinkInvalid
    return request


def locked_guardian_request(token: str) -> GuardianRequest:
    """As :func:`open_guardian_request`, the row locked (for the answer's write path)."""
    request = GuardianRequest.objects.select_for_update().filter(pk=_request_id(token)).first()
    if request is None or not request.is_open:
        raise GuardianLinkInvalid
    return request


def is_child(person: Person) -> bool:
    """Whether ``person``'s data is marked as a child's."""
    return ChildMark.objects.filter(person=person).exists()


def guardian_has_consented(person: Person) -> bool:
    """Whether a guardian gave their consent for the child ``person`` (and it stands)."""
    return ChildMark.objects.filter(person=person, guardian_consented_at__isnull=False).exists()


def record_child_opening(user: AbstractBaseUser | AnonymousUser, person: Person, *, page: str, about: str) -> None:
    """Audit one opening of a child's data by a staff member (committed on its own)."""
    with transaction.atomic(durable=True):
        record_event(
            EventType.CHILD_DATA_OPENED,
            actor=actor_of(user),
            person=person,
            purpose=PURPOSE,
            extra={"page": page, "about": about[:40]},
        )
