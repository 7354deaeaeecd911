"""A direct notice to a person, through the mail outbox, exactly once: what the three notices share.

The law asks three times that we write to people one by one: the site's cessation (§三(二),
:mod:`piwarden.cessation.mail`), a material change of the policy (§十, CHG-01,
:mod:`piwarden.revisions.mail`) and an incident (§五.6, PIPL 57, :mod:`piwarden.incidents.mail`).
Each keeps its own table of notice rows, one per (subject, person), unique: the row is the outbox,
committed with the act that asks for the notice (:func:`create_once` makes them, never twice).
Each declares, in a subclass of :class:`DirectNotices`, what differs:

* whom the row writes to: :meth:`~DirectNotices.recipients` (by default the person, at the address
  :func:`piwarden.people.contacts.address_of` finds, in their language), read under the gate for
  the declared ``purpose`` and :meth:`~DirectNotices.categories`;
* the message, in that language: :meth:`~DirectNotices.render`;
* how its row says "waiting", "ended" and how it ended (:attr:`~DirectNotices.waiting`,
  :meth:`~DirectNotices.ended`), and the audit event that goes with it (by default
  :attr:`~DirectNotices.sent_event` for a notice sent, naming :meth:`~DirectNotices.reference`);
* its crash rule (:attr:`~DirectNotices.claims`), below.

:func:`deliver` runs the one cycle for a row, as every e-mail of the site runs (``inquiries.mail``):

1. in the processing gate's durable transaction, take the row (only if it is still waiting), read
   the address and render; a person with no address left ends there, in the same transaction;
2. send, with no transaction open (:func:`piwarden.mailing.send`);
3. in a second durable transaction, record that it went out (only if nothing else ended the row
   meanwhile), with the notice's audit event.

A refusal of the gate (the person erased, or restricted) ends the row too, in its own transaction
after the gate committed the refusal.  A row that ended is never sent again: a re-run, a second
worker reaching the row after it ended, or a retry after the mail server failed half-way sends only
the rest.

The crash rule: a process that dies between the mail server's acceptance (2) and the record (3)
leaves the row taken and not recorded.  A notice that ``claims`` (the cessation's) marks the row in
step 1, so such a row is not sent again by itself (the person may have it: the operator decides,
``piwarden cessation notify --retry-unconfirmed``), and a failed send gives the claim back.  One that
does not (a policy change, an incident) leaves the row waiting until step 3, so the next run sends
that one message again: the person may get two, never none.
"""

from __future__ import annotations

import functools
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Model, Q

from piwarden.audit.log import EventType, record_event
from piwarden.mailing import MailNotSent, send
from piwarden.people import contacts
from piwarden.people.models import Person
from piwarden.processing import gate

# How a row ended (what :func:`deliver` returns, beside TAKEN); a notice may add its own reasons
# not to write (:meth:`DirectNotices.unreachable`).
SENT = "sent"
REFUSED = "refused"  # by the processing gate: the person is erased, or restricted
NO_ADDRESS = "no_address"  # no source holds an address of the person any longer
TAKEN = "taken"  # not waiting any more: another run has it, or it ended already

BATCH = 1000  # notice rows made per INSERT


@dataclass(frozen=True)
class Addressed:
    """Whom one notice goes to (every address gets the one message), and in which language."""

    to: list[str]
    language: str  # zh-hans or en


class DirectNotices[N: Model](ABC):
    """The declaration of one kind of notice: subclass it once, beside the notice's model."""

    model: type[N]
    purpose: str  # the declared purpose the gate is asked about (a legal duty)
    use_name: str  # the use the gate records
    sent_event: EventType | None = None  # the audit event of a notice sent (recorded())
    waiting: Q  # the rows a run sends: not taken, not ended
    unended: Q  # the rows a record may still end (taken or not): the same as ``waiting`` unless it claims
    claims: bool = False  # the crash rule (module docstring): mark the row taken before sending
    related: tuple[str, ...] = ()  # what render() and use() read of the row's relations

    # --- whom, and what --------------------------------------------------------------------------

    @abstractmethod
    def reference(self, notice: N) -> dict[str, Any]:
        """What the notice is about (its subject's reference, never personal data): for the gate's
        record of the use and the audit event."""

    def use(self, notice: N) -> gate.Use:
        """The use recorded by the gate: the address read, for the notice's subject."""
        return gate.Use(self.use_name, fields=("email",), extra=self.reference(notice))

    def categories(self, notice: N) -> Collection[str]:
        """What the gate is asked about: the categories :meth:`recipients` reads."""
        return contacts.categories()

    def unreachable(self, notice: N) -> str:
        """Why this row cannot be written to without reading anything (ends it), or ''."""
        return ""

    def recipients(self, notice: N, permit: gate.Permit) -> Addressed | None:
        """Read inside the gate's permit: the person's address (from the first source holding one)."""
        address = contacts.address_of(permit.person)
        if address is None:
            return None
        return Addressed([address.email], "en" if address.language == "en" else "zh-hans")

    @abstractmethod
    def render(self, notice: N, language: str) -> tuple[str, str]:
        """The subject and the body, in ``language``."""

    @abstractmethod
    def about(self, notice: N) -> str:
        """What the mailer's error names (never an address)."""

    # --- what is recorded ------------------------------------------------------------------------

    def claimed(self) -> dict[str, Any]:
        """The columns that mark a row taken (a notice that ``claims``)."""
        raise NotImplementedError

    def released(self) -> dict[str, Any]:
        """The columns that give a claim back after a failed send (a notice that ``claims``)."""
        raise NotImplementedError

    @abstractmethod
    def ended(self, outcome: str, reason: str) -> dict[str, Any]:
        """The columns that record how the row ended (``outcome``: SENT, REFUSED, NO_ADDRESS or an
        :meth:`unreachable` reason; ``reason``: the gate's, on a refusal)."""

    def recorded(self, notice: N, outcome: str, reason: str) -> None:
        """The audit event of an ended row, in the transaction that ended it: ``sent_event`` for a
        notice sent (the gate records its refusals itself)."""
        if outcome == SENT and self.sent_event is not None:
            person = Person.objects.get(pk=_person_id(notice))
            record_event(
                self.sent_event, person=person, purpose=self.purpose, fields=["email"], extra=self.reference(notice)
            )


def create_once[N: Model](rows: Iterable[N], *, batch: int = BATCH) -> None:
    """Insert the notice rows, a batch per statement; a row whose (subject, person) exists already
    is left out (the model's unique constraint), so a person is queued once however often this runs."""
    chunk: list[N] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch:
            type(row)._default_manager.bulk_create(chunk, ignore_conflicts=True)
            chunk = []
    if chunk:
        type(chunk[0])._default_manager.bulk_create(chunk, ignore_conflicts=True)


def waiting_ids[N: Model](kind: DirectNotices[N], **subject: Any) -> list[Any]:
    """The ids of the rows of ``subject`` (filters on the notice's model) waiting to be sent, in order."""
    rows = kind.model._default_manager.filter(kind.waiting, **subject).order_by("pk")
    return list(rows.values_list("pk", flat=True))


def deliver[N: Model](kind: DirectNotices[N], notice_id: Any) -> str:
    """Run the cycle for one row; how it ended (SENT, REFUSED, NO_ADDRESS, a reason of the notice's),
    or TAKEN when it was not waiting.  :class:`~piwarden.mailing.MailNotSent` when the mail server
    failed: the row waits again."""
    notice = kind.model._default_manager.select_related(*kind.related).filter(kind.waiting, pk=notice_id).first()
    if notice is None:
        return TAKEN
    why = kind.unreachable(notice)
    if why:
        return _end(kind, notice, why)
    row = kind.model._default_manager.filter(kind.waiting, pk=notice.pk)
    person = functools.partial(Person.objects.get, pk=_person_id(notice))  # read in the gate's transaction
    try:
        with gate.processing(person, kind.purpose, categories=kind.categories(notice), use=kind.use(notice)) as permit:
            taken = row.update(**kind.claimed()) if kind.claims else row.exists()
            if not taken:  # another run was quicker
                return TAKEN
            addressed = kind.recipients(notice, permit)
            if addressed is None or not addressed.to:
                return _record(kind, notice, NO_ADDRESS, "")  # in the gate's transaction, with the reading
            subject, body = kind.render(notice, addressed.language)
    except gate.ProcessingRefused as refused:  # the refusal is recorded by the gate
        return _end(kind, notice, REFUSED, refused.decision.reason)
    try:
        send(subject, body, addressed.to, about=kind.about(notice))
    except MailNotSent:
        if kind.claims:
            _release(kind, notice)
        raise
    return _end(kind, notice, SENT)


def _person_id(notice: Model) -> uuid.UUID:
    person_id: uuid.UUID = notice.person_id  # type: ignore[attr-defined]  # every notice model has its person
    return person_id


def _record[N: Model](kind: DirectNotices[N], notice: N, outcome: str, reason: str) -> str:
    ended = kind.model._default_manager.filter(kind.unended, pk=notice.pk).update(**kind.ended(outcome, reason))
    if ended:
        kind.recorded(notice, outcome, reason)
    return outcome


@transaction.atomic(durable=True)
def _end[N: Model](kind: DirectNotices[N], notice: N, outcome: str, reason: str = "") -> str:
    return _record(kind, notice, outcome, reason)


@transaction.atomic(durable=True)
def _release[N: Model](kind: DirectNotices[N], notice: N) -> None:
    kind.model._default_manager.filter(kind.unended, pk=notice.pk).update(**kind.released())
