"""Write paths of the rights app: each an entry point in its own durable transaction, audited.

* the clock's schedules: :func:`load_schedule`;
* the intake of a rights request (policy §六, PIPL Arts 44-50): :func:`submit_request` (the
  request, awaiting verification, and a one-time code e-mailed to the address given),
  :func:`verify_request` (the code typed back: the request is received, its due date set, the
  receipt e-mailed), and to follow it later :func:`send_follow_code` and :func:`open_status`.

Nothing these answer tells whether an e-mail address is known: a submission creates a request
whatever the address, and :func:`send_follow_code` returns nothing.  A code check says more than
"wrong code" (expired, used, tried too often) only to someone who typed the right code.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import CharField, F, Q, QuerySet, UUIDField
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from tink import aead

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.people.actions import find_or_create_person
from piwarden.people.models import Person
from piwarden.people.registry import EXPORT_PURPOSE
from piwarden.policy.declaration import load_declaration
from piwarden.prepared import (
    Param,
    Params,
    PreparedInsert,
    PreparedSelect,
    columns_of,
    prepare_enqueue,
    prepare_insert,
    save_fields,
    update_rows,
)
from piwarden.processing import gate
from piwarden.rights import clock, fulfil, sealing
from piwarden.rights.access import PURPOSE, StaffRefused, refuse_action, require_handler
from piwarden.rights.codes import code_digest, new_code, normalise_code, same_digest
from piwarden.rights.fulfil import Fulfilment
from piwarden.rights.models import (
    CODE_ATTEMPTS,
    CODE_DIGITS,
    CODE_LIFETIME,
    OPEN_STATUSES,
    REFERENCE_LENGTH,
    UNRECOGNISED_GROUNDS,
    ActingAs,
    Archive,
    ArchiveStatus,
    CodePurpose,
    DayKind,
    RefusalGround,
    RequestKind,
    RequestStatus,
    RequestStep,
    RightsRequest,
    ScheduleDay,
    ScheduleYear,
    VerificationCode,
)
from piwarden.rights.tasks import (
    send_code_mail,
    send_escalation_mail,
    send_receipt_mail,
    send_reminder_mail,
    send_step_mail,
)
from piwarden.staff import permissions
from piwarden.staff.permissions import Capability
from piwarden.vault import blind
from piwarden.vault.crypto import aead_for

# The Measures on National Annual Holidays and Memorial Days (全国年节及纪念日放假办法), as
# amended with effect from 2025: 13 statutory days off a year, New Year's Day among them.  The
# notice's days off include them (and the weekends it joins to them), so a list with fewer is
# missing a range.
STATUTORY_DAYS_OFF = 13
FIRST_YEAR, LAST_YEAR = 2000, 2099
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ScheduleError(ValueError):
    """A schedule that cannot be the State Council's notice for its year; the message says why."""


@dataclass(frozen=True)
class ReplacedSchedule:
    loaded_at: datetime
    loaded_by: str  # the staff account's user name
    holidays: int
    workdays: int


@dataclass(frozen=True)
class LoadedSchedule:
    year: int
    holidays: tuple[date, ...]
    workdays: tuple[date, ...]
    replaced: ReplacedSchedule | None  # what had been loaded for that year before
    requests_redated: int = 0  # open requests whose provisional due date was counted again


def check_schedule(year: int, holidays: Iterable[date], workdays: Iterable[date]) -> None:
    """Refuse what an operator copying a notice can get wrong, with a message that says what."""
    holidays, workdays = set(holidays), set(workdays)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ScheduleError(f"{year} is not a year this clock can hold ({FIRST_YEAR} to {LAST_YEAR}).")
    for day in sorted(holidays | workdays):
        if day.year != year:
            raise ScheduleError(
                f"{day.isoformat()} is not in {year}: a schedule holds the dates of its own year only "
                f"(load {day.year} separately, from its own notice)."
            )
    if both := sorted(holidays & workdays):
        raise ScheduleError(
            f"{', '.join(d.isoformat() for d in both)} given both as a day off and as a make-up workday."
        )
    if weekdays := [d for d in sorted(workdays) if d.weekday() < 5]:  # noqa: PLR2004  # Monday..Friday
        day = weekdays[0]
        raise ScheduleError(
            f"{day.isoformat()} is a {_WEEKDAYS[day.weekday()]}: a make-up workday (调休) is a Saturday or "
            "Sunday that the notice makes a working day; Monday to Friday are working days already."
        )
    if date(year, 1, 1) not in holidays:
        raise ScheduleError(
            f"{year}-01-01 is not among the days off, but New Year's Day is a day off every year: "
            f"check that these dates are the notice for {year}."
        )
    if len(holidays) < STATUTORY_DAYS_OFF:
        raise ScheduleError(
            f"Only {len(holidays)} days off given; the statutory holidays alone are {STATUTORY_DAYS_OFF} "
            "days a year: a range is missing (write each period as FIRST..LAST, both days included)."
        )


@transaction.atomic(durable=True)
def load_schedule(*, year: int, holidays: Iterable[date], workdays: Iterable[date], by: User) -> LoadedSchedule:
    """Put a year's schedule from the State Council's notice in place of what the clock knew.

    Replaces the library's data and any schedule loaded before for that year; the
    ``rights.schedule_loaded`` event records every date, who loaded them and what was replaced.
    """
    holidays, workdays = tuple(sorted(set(holidays))), tuple(sorted(set(workdays)))
    check_schedule(year, holidays, workdays)
    before = ScheduleYear.objects.select_for_update().select_related("loaded_by").filter(year=year).first()
    replaced, replaced_record = None, None
    if before is not None:
        kinds = list(before.days.values_list("kind", flat=True))
        replaced = ReplacedSchedule(
            loaded_at=before.loaded_at,
            loaded_by=before.loaded_by.get_username(),
            holidays=kinds.count(DayKind.HOLIDAY),
            workdays=kinds.count(DayKind.WORKDAY),
        )
        replaced_record = {
            "loaded_at": before.loaded_at.isoformat(),
            "loaded_by": before.loaded_by_id,
            "holidays": replaced.holidays,
            "workdays": replaced.workdays,
        }
        before.days.all().delete()
    schedule, _ = ScheduleYear.objects.update_or_create(
        year=year, defaults={"loaded_at": timezone.now(), "loaded_by": by}
    )
    ScheduleDay.objects.bulk_create(
        [ScheduleDay(schedule=schedule, date=d, kind=DayKind.HOLIDAY) for d in holidays]
        + [ScheduleDay(schedule=schedule, date=d, kind=DayKind.WORKDAY) for d in workdays]
    )
    redated = _redate_provisional_requests()
    record_event(
        EventType.SCHEDULE_LOADED,
        actor=by,
        extra={
            "year": year,
            "holidays": [d.isoformat() for d in holidays],
            "workdays": [d.isoformat() for d in workdays],
            "replaced": replaced_record,
            "requests_redated": redated,
        },
    )
    return LoadedSchedule(year=year, holidays=holidays, workdays=workdays, replaced=replaced, requests_redated=redated)


def _redate_provisional_requests() -> int:
    """Count again the due date of every open request whose date was provisional (rights-intake).

    Runs in the load's transaction, after the new days are written, so the count sees them: a
    date counted with weekends only becomes the final one (or stays provisional if it runs into
    yet another year not loaded).  An extended date is staff's own, told to the person: left alone.
    """
    calendar = clock.load_calendar()
    changed = []
    open_provisional = RightsRequest.objects.filter(
        status__in=OPEN_STATUSES, due_provisional=True, received_on__isnull=False, extended_due_on__isnull=True
    ).only("id", "received_on", "due_on", "due_provisional")
    for request in open_provisional:
        assert request.received_on is not None  # noqa: S101  # filtered on
        due = clock.due_date(request.received_on, calendar)
        request.due_on, request.due_provisional = due.date, due.provisional
        changed.append(request)
    RightsRequest.objects.bulk_update(changed, ["due_on", "due_provisional"])
    return len(changed)


# --- the intake of a rights request ---------------------------------------------------------

# The declared category (policy/declaration.toml) of a request's personal fields; their purpose is
# access.PURPOSE.
CATEGORY = "rights_requests"


@dataclass(frozen=True)
class RequestInput:
    """A validated request (``rights.forms.RightsRequestForm.to_input``), as every interface gives it."""

    kind: RequestKind
    email: str
    details: str
    acting_as: ActingAs
    language: str


def submit_request(
    given: RequestInput, *, context: str = "rights.submit", also: Callable[[RightsRequest], object] | None = None
) -> RightsRequest:
    """Store a request, awaiting verification, and queue the e-mail with its one-time code.

    The requester is the person with this e-mail (found by its blind index, or created): the
    request's encrypted fields are sealed under their data key.  One transaction, the gate's,
    holds the request, its first step, the code, the audit event and the queued e-mail.  The
    answer is the same whether the address was known or not: a new request with a new reference.
    Two first requests with one new e-mail meet the person's unique index: the loser runs again.
    ``also`` runs in the same transaction once the request is written: the pages and the API record
    the request's security event there (``security.actions.recording``).
    """
    for last_attempt in (False, True):
        try:
            return _submit(given, context, also)
        except IntegrityError:
            if last_attempt:
                raise
    raise AssertionError("unreachable")


def _submit(given: RequestInput, context: str, also: Callable[[RightsRequest], object] | None) -> RightsRequest:
    find = functools.partial(find_or_create_person, email=given.email)
    use = gate.Use(context, actor_kind=ActorKind.VISITOR, fields=("email", "details"))
    with gate.processing(find, PURPOSE, categories={CATEGORY}, use=use) as permit:
        person, now = permit.person, timezone.now()
        request = RightsRequest(
            person=person,
            data_key_id=person.data_key_id,
            kind=given.kind,
            email=given.email,
            details=given.details,
            acting_as=given.acting_as,
            language=given.language,
            submitted_at=now,
        )
        request.save(force_insert=True)
        append_step(request, RequestStatus.AWAITING_VERIFICATION, now)
        code = _issue_code(request, CodePurpose.VERIFY, now)
        record_event(
            EventType.RIGHTS_REQUEST_SUBMITTED,
            actor_kind=ActorKind.VISITOR,
            person=person,
            purpose=PURPOSE,
            fields=("email", "details"),
            extra={"request": request.reference, "kind": request.kind, "acting_as": request.acting_as},
        )
        if also is not None:
            also(request)
        # The task backend writes to the same database: the queued e-mail commits with the request.
        send_code_mail.enqueue(str(code.pk))
    return request


def append_step(request: RightsRequest, status: RequestStatus, at: datetime, note: str = "") -> RequestStep:
    """One line of the request's timeline, as its status page shows it; ``note`` is told to the person
    (encrypted under their data key).  A part of a write path: call it inside that path's transaction,
    where the request's own fields change (the staff queue and fulfilment do too)."""
    step = RequestStep(
        person_id=request.person_id, data_key_id=request.data_key_id, request=request, at=at, status=status, note=note
    )
    prepare_insert(step).run()  # one INSERT, without save()'s machinery (on the path of every request)
    return step


def _issue_code(request: RightsRequest, purpose: CodePurpose, now: datetime) -> VerificationCode:
    code = new_code()
    issued = VerificationCode(
        person_id=request.person_id,
        data_key_id=request.data_key_id,
        request=request,
        purpose=purpose,
        code_hash=code_digest(request.pk, purpose, code),
        created_at=now,
        expires_at=now + CODE_LIFETIME,
        sealed_code=code,
    )
    issued.save(force_insert=True)
    return issued


def normalise_reference(typed: str) -> str:
    """A reference as typed (spaces, dashes, lower case, full-width letters) in its stored form."""
    return "".join(c for c in typed.upper() if not c.isspace() and c != "-")[: REFERENCE_LENGTH + 1]


class CodeOutcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"  # also: no such reference, no code sent (nothing is revealed about either)
    EXPIRED = "expired"  # the right code, past its 10 minutes
    USED = "used"  # the right code, used once already
    EXHAUSTED = "exhausted"  # the right code, after three wrong tries


@dataclass(frozen=True)
class CodeCheck:
    outcome: CodeOutcome
    request: RightsRequest | None = None  # the request, when the code was right and valid

    @property
    def ok(self) -> bool:
        return self.outcome is CodeOutcome.OK


@transaction.atomic(durable=True)
def verify_request(reference: str, code: str) -> CodeCheck:
    """The code from the submission's e-mail typed back: the request is received.

    Sets the day of receipt and the due date (``rights.clock``), writes the step and the audit
    event and queues the receipt e-mail (reference, due date, whether it is provisional).  A
    request verified already is answered OK again only with a new code (a used one is USED).
    A wrong code counts a try against every live code of the request; after three, it is dead.
    """
    return _use_code(reference, code, (CodePurpose.VERIFY,), context="verify")


@transaction.atomic(durable=True)
def open_status(reference: str, code: str) -> CodeCheck:
    """A code from :func:`send_follow_code` typed back: the person may see the request's status.

    A code e-mailed for a request still awaiting verification verifies it too (as
    :func:`verify_request`), so a person whose first code expired can start again from here.
    """
    check = _use_code(reference, code, (CodePurpose.FOLLOW, CodePurpose.VERIFY), context="follow")
    if check.request is not None:
        record_event(
            EventType.RIGHTS_STATUS_OPENED,
            actor_kind=ActorKind.VISITOR,
            person=check.request.person,
            purpose=PURPOSE,
            extra={"request": check.request.reference},
        )
    return check


def _use_code(reference: str, typed: str, purposes: tuple[CodePurpose, ...], *, context: str) -> CodeCheck:
    code = normalise_code(typed)
    request = request_by_reference(normalise_reference(reference), locked=True)
    if request is None or len(code) != CODE_DIGITS or not code.isdigit():
        return CodeCheck(CodeOutcome.WRONG)
    now = timezone.now()
    codes = _CODES.rows(request=request.pk, purposes=purposes)
    digests = {purpose: code_digest(request.pk, purpose, code) for purpose in purposes}
    matched = next((_Code(*c) for c in codes if same_digest(c[2], digests[CodePurpose(c[1])])), None)
    if matched is None:
        VerificationCode.objects.filter(
            request=request, purpose__in=purposes, used_at=None, expires_at__gt=now, attempts__lt=CODE_ATTEMPTS
        ).update(attempts=F("attempts") + 1)
        outcome = CodeOutcome.WRONG
    elif matched.used_at is not None:
        outcome = CodeOutcome.USED
    elif matched.attempts >= CODE_ATTEMPTS:
        outcome = CodeOutcome.EXHAUSTED
    elif matched.expires_at <= now:
        outcome = CodeOutcome.EXPIRED
    else:
        outcome = CodeOutcome.OK
    if outcome is not CodeOutcome.OK:
        record_event(
            EventType.RIGHTS_CODE_REFUSED,
            actor_kind=ActorKind.VISITOR,
            person=request.person,
            purpose=PURPOSE,
            extra={"request": request.reference, "outcome": str(outcome), "context": context},
        )
        return CodeCheck(outcome)
    assert matched is not None  # noqa: S101  # outcome OK means a code matched
    update_rows(VerificationCode, {"used_at": now, "sealed_code": None}, where={"id": matched.pk})
    if request.status == RequestStatus.AWAITING_VERIFICATION and matched.purpose == CodePurpose.VERIFY:
        _receive(request, now)
    return CodeCheck(CodeOutcome.OK, request)


@dataclass(frozen=True)
class _Code:
    pk: uuid.UUID
    purpose: str
    code_hash: str
    used_at: datetime | None
    attempts: int
    expires_at: datetime


_CODES = PreparedSelect(
    lambda: VerificationCode.objects.filter(
        request_id=Param("request", UUIDField()), purpose__in=Params("purposes", CharField())
    ).values_list(*(f.name for f in fields(_Code))),
    streamed=False,
)


def _with_person(locked: bool) -> PreparedSelect:
    def build() -> QuerySet[RightsRequest, Any]:
        rows = RightsRequest.objects.select_for_update() if locked else RightsRequest.objects.all()
        person = (f"person__{column}" for column in columns_of(Person))
        return rows.filter(reference=Param("reference", CharField())).values_list(*columns_of(RightsRequest), *person)

    return PreparedSelect(build, streamed=False)


_BY_REFERENCE, _LOCKED_BY_REFERENCE = _with_person(locked=False), _with_person(locked=True)


def request_by_reference(reference: str, *, locked: bool = False) -> RightsRequest | None:
    """The request with its person, as ``select_related("person")`` (and ``select_for_update()``,
    with ``locked``) loads them, in one SELECT compiled once per process: the ORM spent more on
    compiling its join each time than SQLite on running it (verification and completion run here)."""
    for row in (_LOCKED_BY_REFERENCE if locked else _BY_REFERENCE).rows(reference=reference, chunk=1):
        own = len(columns_of(RightsRequest))
        request = RightsRequest.from_db(DEFAULT_DB_ALIAS, columns_of(RightsRequest), row[:own])
        request.person = Person.from_db(DEFAULT_DB_ALIAS, columns_of(Person), row[own:])
        return request
    return None


def _receive(request: RightsRequest, now: datetime) -> None:
    """Verified: the request is received on the PRC day it was submitted, and due 15 working days later."""
    received_on = clock.day_of_receipt(request.submitted_at)
    due = clock.due_date(received_on)
    request.status = RequestStatus.RECEIVED
    request.verified_at = now
    request.received_on = received_on
    request.due_on = due.date
    request.due_provisional = due.provisional
    save_fields(request, ["status", "verified_at", "received_on", "due_on", "due_provisional"])
    append_step(request, RequestStatus.RECEIVED, now)
    record_event(
        EventType.RIGHTS_REQUEST_VERIFIED,
        actor_kind=ActorKind.VISITOR,
        person=request.person,
        purpose=PURPOSE,
        extra={
            "request": request.reference,
            "received_on": received_on.isoformat(),
            "due_on": due.date.isoformat(),
            "provisional": due.provisional,
        },
    )
    prepare_enqueue(send_receipt_mail, str(request.pk)).run()  # as .enqueue(); announced on commit


def send_follow_code(reference: str, email: str) -> None:
    """E-mail a code to follow a request, if ``email`` is the requester's; else do nothing.

    Returns nothing either way, so that no answer tells whether the reference and the address
    belong together.  Both ways read the request and write the gate's record of the comparison
    (a use of the person's identifiers), so the two take about as long; a match adds the code
    and the queued e-mail.  A request still awaiting verification gets a verification code
    (:func:`open_status` then verifies it).
    """
    index = blind.email_index(email)
    request = RightsRequest.objects.filter(reference=normalise_reference(reference)).select_related("person").first()
    if request is None:
        return
    use = gate.Use("rights.follow_code", actor_kind=ActorKind.VISITOR, extra={"request": request.reference})
    try:
        _send_follow_code(request, index, use)
    except gate.ProcessingRefused:
        return  # the person's data was erased: recorded by the gate; nothing to follow


def _send_follow_code(request: RightsRequest, index: str, use: gate.Use) -> None:
    with gate.processing(request.person, PURPOSE, categories={CATEGORY, "identifiers"}, use=use) as permit:
        stored = permit.person.email_index
        if stored is None or not same_digest(stored, index):
            return
        now = timezone.now()
        waiting = request.status == RequestStatus.AWAITING_VERIFICATION
        code = _issue_code(request, CodePurpose.VERIFY if waiting else CodePurpose.FOLLOW, now)
        record_event(
            EventType.RIGHTS_CODE_SENT,
            actor_kind=ActorKind.VISITOR,
            person=permit.person,
            purpose=PURPOSE,
            extra={"request": request.reference, "code_purpose": code.purpose},
        )
        send_code_mail.enqueue(str(code.pk))


# --- rights-queue: the staff's write paths (issue 7 §2, §3) ---------------------------------
#
# Each public function checks the staff member's role first (``handle_rights``, refused and
# recorded by :func:`piwarden.rights.access.require_handler`, committed on its own), then makes its
# change in one durable transaction with its audit event, the step the person sees on the status
# page and, for an extension, a refusal or a completion, the queued e-mail to the person
# (:func:`piwarden.rights.tasks.send_step_mail`: sent once, retried while the mail server is down).
# A request that is closed, or in a state the action does not apply to, is refused with a message
# and nothing changes.

# An extension adds this many working days to the original due date, once.  The law says
# "promptly" and gives no number; the policy promises 15 working days "or an explanation within
# them": a further 15 (about three weeks) doubles the period as GDPR 12(3) doubles its month,
# and keeps the whole within the 30 days GB/T 35273 §8.7 allows for most requests.
EXTENSION_WORKING_DAYS = 15
MIN_TEXT, MAX_TEXT = 10, 4000


def _today() -> date:
    return clock.day_of_receipt(timezone.now())


def _text(value: str, what: str) -> str:
    text = (value or "").strip()
    if len(text) < MIN_TEXT:
        raise StaffRefused(
            _("Write the %(what)s for the person, in at least %(n)d characters.") % {"what": what, "n": MIN_TEXT},
            status=400,
        )
    if len(text) > MAX_TEXT:
        raise StaffRefused(_("Keep it to %(n)d characters at most.") % {"n": MAX_TEXT}, status=400)
    return text


def _locked_open(reference: str) -> RightsRequest:
    request = request_by_reference(reference, locked=True)
    if request is None or request.status == RequestStatus.AWAITING_VERIFICATION:
        raise StaffRefused(_("No such request."), status=404)
    if not request.is_open:
        raise StaffRefused(_("This request is closed already."), status=409)
    return request


def _staff_event(event: EventType, actor: User, request: RightsRequest, **extra: object) -> None:
    record_event(
        event, actor=actor, person=request.person, purpose=PURPOSE, extra={"request": request.reference, **extra}
    )


def _mailed_step(request: RightsRequest, status: RequestStatus, now: datetime, note: str) -> RequestStep:
    step = append_step(request, status, now, note)
    # The task backend writes to this database: queued on commit (as .enqueue(), for less).
    prepare_enqueue(send_step_mail, str(step.pk)).run()
    return step


def assign_request(user: AbstractBaseUser | AnonymousUser, reference: str, *, to: User | None = None) -> None:
    """Give the request to a staff member (``to``, or the one acting) who handles rights requests."""
    actor = require_handler(user, "assign", reference)
    assignee = to or actor
    if not permissions.account_may(assignee, Capability.HANDLE_RIGHTS):
        raise StaffRefused(_("That staff member does not handle rights requests."), status=400)
    _assign(actor, reference, assignee)


@transaction.atomic(durable=True)
def _assign(actor: User, reference: str, assignee: User) -> None:
    request = _locked_open(reference)
    request.assigned_to = assignee
    request.save(update_fields=["assigned_to"])
    _staff_event(EventType.RIGHTS_ASSIGNED, actor, request, assigned_to=assignee.pk)


def start_request(user: AbstractBaseUser | AnonymousUser, reference: str) -> None:
    """Take the request in hand: in progress (the person sees the step); assigned to the actor if nobody."""
    _start(require_handler(user, "start", reference), reference)


@transaction.atomic(durable=True)
def _start(actor: User, reference: str) -> None:
    request = _locked_open(reference)
    if request.status != RequestStatus.RECEIVED:
        raise StaffRefused(_("This request is in progress already."), status=409)
    request.status = RequestStatus.IN_PROGRESS
    request.assigned_to = request.assigned_to or actor
    request.save(update_fields=["status", "assigned_to"])
    append_step(request, RequestStatus.IN_PROGRESS, timezone.now())
    _staff_event(EventType.RIGHTS_STARTED, actor, request)


def extend_request(
    user: AbstractBaseUser | AnonymousUser, reference: str, *, reason: str, today: date | None = None
) -> date:
    """Extend the answer by :data:`EXTENSION_WORKING_DAYS` working days, once, before the original
    due date has passed (policy §六: the explanation reaches the person within the 15 working days).
    The reason is e-mailed to the person and shown on the status page.  Returns the new due date."""
    actor = require_handler(user, "extend", reference)
    return _extend(actor, reference, _text(reason, _("explanation of the extension")), today or _today())


@transaction.atomic(durable=True)
def _extend(actor: User, reference: str, reason: str, today: date) -> date:
    request = _locked_open(reference)
    if request.extended_due_on is not None:
        raise StaffRefused(_("This request was extended once already; answer it."), status=409)
    assert request.due_on is not None  # noqa: S101  # a verified request has its due date
    if today > request.due_on:
        raise StaffRefused(
            _("The original due date (%(due)s) has passed: an extension must reach the person before it.")
            % {"due": request.due_on.isoformat()},
            status=409,
        )
    calendar = clock.load_calendar()
    new_due, counted = request.due_on, 0
    while counted < EXTENSION_WORKING_DAYS:
        new_due += timedelta(days=1)
        counted += calendar.is_working_day(new_due)
    request.status = RequestStatus.EXTENDED
    request.extended_due_on = new_due
    request.extension_reason = reason
    request.save(update_fields=["status", "extended_due_on", "extension_reason"])
    _mailed_step(request, RequestStatus.EXTENDED, timezone.now(), reason)
    _staff_event(
        EventType.RIGHTS_EXTENDED,
        actor,
        request,
        due_on=request.due_on.isoformat(),
        extended_due_on=new_due.isoformat(),
        working_days=EXTENSION_WORKING_DAYS,
    )
    return new_due


def refuse_request(user: AbstractBaseUser | AnonymousUser, reference: str, *, ground: str, reasons: str) -> bool:
    """Refuse with a ground and the reasons (PIPL 50).  On a ground the law recognises the refusal
    is made and e-mailed at once (True); on one it does not (:data:`UNRECOGNISED_GROUNDS`) it is
    only proposed, and waits for :func:`approve_refusal` by another staff member (False)."""
    actor = require_handler(user, "refuse", reference)
    if ground not in RefusalGround.values:
        raise StaffRefused(_("Choose the ground of the refusal."), status=400)
    text = _text(reasons, _("reasons of the refusal"))
    return _refuse_or_propose(actor, reference, RefusalGround(ground), text)


@transaction.atomic(durable=True)
def _refuse_or_propose(actor: User, reference: str, ground: RefusalGround, reasons: str) -> bool:
    request = _locked_open(reference)
    if ground in UNRECOGNISED_GROUNDS:
        request.proposed_ground = ground
        request.proposed_reasons = reasons
        request.refusal_proposed_by = actor
        request.refusal_proposed_at = timezone.now()
        request.save(
            update_fields=["proposed_ground", "proposed_reasons", "refusal_proposed_by", "refusal_proposed_at"]
        )
        _staff_event(EventType.RIGHTS_REFUSAL_PROPOSED, actor, request, ground=str(ground))
        return False
    _refuse(actor, request, ground, reasons, approved_by=None)
    return True


def _refuse(actor: User, request: RightsRequest, ground: str, reasons: str, *, approved_by: User | None) -> None:
    now = timezone.now()
    request.status = RequestStatus.REFUSED
    request.refusal_ground = ground
    request.outcome = reasons
    request.decided_at = now
    request.approved_by = approved_by
    request.proposed_ground, request.proposed_reasons = "", ""
    request.refusal_proposed_by, request.refusal_proposed_at = None, None
    request.save(
        update_fields=[
            "status",
            "refusal_ground",
            "outcome",
            "decided_at",
            "approved_by",
            "proposed_ground",
            "proposed_reasons",
            "refusal_proposed_by",
            "refusal_proposed_at",
        ]
    )
    _mailed_step(request, RequestStatus.REFUSED, now, reasons)
    _staff_event(
        EventType.RIGHTS_REFUSED,
        actor,
        request,
        ground=ground,
        approved_by=approved_by.pk if approved_by is not None else None,
    )


def approve_refusal(user: AbstractBaseUser | AnonymousUser, reference: str) -> None:
    """A second staff member approves a refusal proposed on a ground the law does not recognise."""
    _approve(require_handler(user, "approve", reference), reference)


def _approve(actor: User, reference: str) -> None:
    with transaction.atomic(durable=True):
        request = _locked_open(reference)
        if request.refusal_proposed_at is None:
            raise StaffRefused(_("No refusal awaits approval on this request."), status=409)
        proposer = request.refusal_proposed_by
        if proposer is None or proposer.pk != actor.pk:
            _refuse(actor, request, request.proposed_ground, request.proposed_reasons or "", approved_by=actor)
            return
    refuse_action(actor, "approve", gettext_noop("the approver proposed the refusal"), reference)
    raise StaffRefused(_("Another staff member must approve a refusal you proposed."))


def reject_refusal(user: AbstractBaseUser | AnonymousUser, reference: str, *, note: str) -> None:
    """A second staff member rejects a refusal proposed on a ground the law does not recognise.

    The other answer to :func:`approve_refusal`, under the same rules (a role that handles rights
    requests; not the proposer, refused and recorded).  The proposal is withdrawn, the request
    stays open and is in progress (a received one becomes so, as the person's timeline then
    says; nothing is e-mailed to them), and ``note`` tells the proposer why: kept sealed under
    the person's data key like the proposal, shown in the back office on an audited reveal.
    ``rights.refusal_rejected`` records who rejected which ground, never the note.
    """
    actor = require_handler(user, "reject", reference)
    _reject(actor, reference, _text(note, _("reasons for rejecting the proposed refusal")))


def _reject(actor: User, reference: str, note: str) -> None:
    with transaction.atomic(durable=True):
        request = _locked_open(reference)
        if request.refusal_proposed_at is None:
            raise StaffRefused(_("No refusal awaits approval on this request."), status=409)
        proposer = request.refusal_proposed_by
        if proposer is None or proposer.pk != actor.pk:
            _withdraw_proposal(actor, request, note)
            return
    refuse_action(actor, "reject", gettext_noop("the rejecter proposed the refusal"), reference)
    raise StaffRefused(_("Another staff member must decide on a refusal you proposed."))


def _withdraw_proposal(actor: User, request: RightsRequest, note: str) -> None:
    now = timezone.now()
    ground = request.proposed_ground
    request.rejected_ground = ground
    request.rejection_note = note
    request.refusal_rejected_by = actor
    request.refusal_rejected_at = now
    request.proposed_ground, request.proposed_reasons = "", ""
    request.refusal_proposed_at = None  # refusal_proposed_by stays: the proposer the note answers
    fields = [
        "rejected_ground",
        "rejection_note",
        "refusal_rejected_by",
        "refusal_rejected_at",
        "proposed_ground",
        "proposed_reasons",
        "refusal_proposed_at",
    ]
    if request.status == RequestStatus.RECEIVED:
        request.status = RequestStatus.IN_PROGRESS
        fields.append("status")
        append_step(request, RequestStatus.IN_PROGRESS, now)  # shown on the status page, not e-mailed
    request.save(update_fields=fields)
    _staff_event(
        EventType.RIGHTS_REFUSAL_REJECTED,
        actor,
        request,
        ground=ground,
        proposed_by=request.refusal_proposed_by_id,
        status=request.status,
    )


def complete_request(
    user: AbstractBaseUser | AnonymousUser, reference: str, *, result: str, fulfilment: Fulfilment | None = None
) -> None:
    """Answer the request with its result (e-mailed, shown on the status page), executing it first
    where its kind executes (:func:`piwarden.rights.fulfil.execute`); see that module for each kind."""
    actor = require_handler(user, "complete", reference)
    text = _text(result, _("result"))
    request = request_by_reference(reference)
    if request is None or not request.is_open:
        raise StaffRefused(_("This request is closed already."), status=409)
    executed = fulfil.execute(actor, request, fulfilment or Fulfilment())  # each its own write path
    _complete(actor, reference, text, executed)


@transaction.atomic(durable=True)
def _complete(actor: User, reference: str, result: str, executed: fulfil.Executed) -> None:
    request = _locked_open(reference)
    now = timezone.now()
    request.status = RequestStatus.COMPLETED
    request.outcome = result
    request.decided_at = request.completed_at = now
    request.proposed_ground, request.proposed_reasons = "", ""
    request.refusal_proposed_by, request.refusal_proposed_at = None, None
    if executed.done:
        request.fulfilled_at = now
    if executed.subject is not None:  # executed on someone else's record (fulfil._on_record)
        request.subject, request.executed_right = executed.subject, executed.right
    save_fields(
        request,
        [
            "subject",
            "executed_right",
            "status",
            "outcome",
            "decided_at",
            "completed_at",
            "proposed_ground",
            "proposed_reasons",
            "refusal_proposed_by",
            "refusal_proposed_at",
            "fulfilled_at",
        ],
    )
    _mailed_step(request, RequestStatus.COMPLETED, now, result)
    _staff_event(EventType.RIGHTS_COMPLETED, actor, request, executed=executed.what)
    fulfil.after_completion(request, executed)  # queues the archive's build, for access and copy


# --- rights-queue: reminders at working day 10 and escalation when overdue (RGT-09) --------

REMIND_AT_WORKING_DAY = 10


@dataclass(frozen=True)
class Reminders:
    reminded: tuple[str, ...]  # references
    escalated: tuple[str, ...]


def remind_and_escalate(today: date | None = None) -> Reminders:
    """The periodic job (``piwarden rights remind``; ``piwarden serve`` runs it hourly): each open
    request on or past its 10th working day after receipt is reminded once (e-mail to the assignee,
    or the privacy officer's address), and each past its due date (the extended one once extended)
    is escalated once (e-mail to the privacy officer, an audit event, a flag in the queue).
    Idempotent: a second run the same day finds nothing to do.  ``today``: the PRC day (tests pass it)."""
    today = today or _today()
    calendar = clock.load_calendar()
    reminded: list[str] = []
    escalated: list[str] = []
    candidates = (
        RightsRequest.objects.filter(status__in=OPEN_STATUSES, received_on__isnull=False)
        .filter(Q(reminded_at__isnull=True) | Q(escalated_at__isnull=True))
        .only("id", "reference", "received_on", "due_on", "extended_due_on", "reminded_at", "escalated_at")
        .order_by("due_on", "id")
    )
    for request in candidates:
        due = request.answer_due_on
        if request.received_on is None or due is None:  # verified requests have both
            continue
        if today > due:
            if request.escalated_at is None and _escalate(request.pk, today):
                escalated.append(request.reference)
        elif request.reminded_at is None:
            day = clock.working_days_between(request.received_on, today, calendar)
            if day >= REMIND_AT_WORKING_DAY and _remind(request.pk, day):
                reminded.append(request.reference)
    return Reminders(reminded=tuple(reminded), escalated=tuple(escalated))


@transaction.atomic(durable=True)
def _remind(request_id: uuid.UUID, working_day: int) -> bool:
    request = RightsRequest.objects.select_for_update().select_related("person").get(pk=request_id)
    if request.reminded_at is not None or not request.is_open:
        return False
    request.reminded_at = timezone.now()
    request.save(update_fields=["reminded_at"])
    record_event(
        EventType.RIGHTS_REMINDED,
        actor_kind=ActorKind.SYSTEM,
        person=request.person,
        purpose=PURPOSE,
        extra={"request": request.reference, "working_day": working_day, "assigned_to": request.assigned_to_id},
    )
    send_reminder_mail.enqueue(str(request.pk))
    return True


@transaction.atomic(durable=True)
def _escalate(request_id: uuid.UUID, today: date) -> bool:
    request = RightsRequest.objects.select_for_update().select_related("person").get(pk=request_id)
    if request.escalated_at is not None or not request.is_open:
        return False
    due = request.answer_due_on
    request.escalated_at = timezone.now()
    request.save(update_fields=["escalated_at"])
    record_event(
        EventType.RIGHTS_ESCALATED,
        actor_kind=ActorKind.SYSTEM,
        person=request.person,
        purpose=PURPOSE,
        extra={
            "request": request.reference,
            "due_on": due.isoformat() if due else None,
            "today": today.isoformat(),
            "assigned_to": request.assigned_to_id,
        },
    )
    send_escalation_mail.enqueue(str(request.pk))
    return True


# --- the archive that answers an access or copy request (piwarden.rights.archive) ----------------

ARCHIVE_CATEGORY = "rights_archives"  # policy/declaration.toml


class ArchiveUnavailable(Exception):
    """No ready, unexpired archive of this id for this person (one answer for every case)."""


def archive_lifetime() -> dt.timedelta:
    """How long an archive is kept: the declared retention of its category (5 days)."""
    return dt.timedelta(days=load_declaration().category(ARCHIVE_CATEGORY).retention_days)


@dataclass(frozen=True)
class StartedArchive:
    archive: Archive
    key: aead.Aead  # the person's data key, opened under the gate's permit, to seal the archive with


def prepare_archive(person: Person, *, reference: str) -> PreparedInsert:
    """The row of an archive about to be built, made before the transaction that writes it
    (:func:`start_archive`): its id names the export's record in the audit log."""
    now = timezone.now()
    archive = Archive(person=person, reference=reference, created_at=now, expires_at=now + archive_lifetime())
    return prepare_insert(archive)


def start_archive(permit: gate.Permit, row: PreparedInsert) -> StartedArchive:
    """The archive's row written, and the key to seal it opened under ``permit``: run inside the gate's
    transaction of the archive's export (``export_person(within=...)``), whose record of the basis is
    the record of this use too.  An erased person gets ``ProcessingRefused`` there and no row.  The
    build's outcome is recorded by :func:`finish_archive` or :func:`fail_archive`.
    """
    archive = row.run()
    if not isinstance(archive, Archive):
        raise TypeError(f"start_archive writes an archive's row, not {type(archive).__name__}")
    return StartedArchive(archive, aead_for(permit.person.data_key_id))


def note_archive_progress(archive_id: uuid.UUID, *, records: int, categories: int) -> None:
    """How far the build got, for a page that shows progress (counts only; not audited)."""
    Archive.objects.filter(pk=archive_id, status=ArchiveStatus.BUILDING).update(
        records_done=records, categories_done=categories
    )


@transaction.atomic(durable=True)
def finish_archive(archive: Archive, *, size: int, sha256: str, counts: Mapping[str, int]) -> Archive | None:
    """Mark the archive ready and record ``rights.archive_built``; None when its row is gone.

    The row is gone when the person was erased (or the archive expired) while it was built: the
    caller then deletes the file it wrote.  One UPDATE, on the row only while it is still
    building, says which (``archive`` is the row :func:`start_archive` made).
    """
    records = sum(counts.values())
    ready = update_rows(
        Archive,
        {
            "status": ArchiveStatus.READY,
            "size": size,
            "sha256": sha256,
            "counts": dict(counts),
            "records_done": records,
            "categories_done": len(counts),
        },
        where={"id": archive.pk, "status": ArchiveStatus.BUILDING},
    )
    if not ready:
        return None
    archive.status = ArchiveStatus.READY
    archive.size, archive.sha256, archive.counts = size, sha256, dict(counts)
    archive.records_done, archive.categories_done = records, len(counts)
    record_event(
        EventType.ARCHIVE_BUILT,
        person=archive.person,
        purpose=EXPORT_PURPOSE,
        extra={
            "archive": str(archive.id),
            "reference": archive.reference,
            "records": archive.records_done,
            "categories": archive.categories_done,
            "size": size,
        },
    )
    return archive


@transaction.atomic(durable=True)
def fail_archive(archive_id: uuid.UUID, *, error: str) -> None:
    """Mark the build failed (``error``: the exception's class, never its message) and delete its files."""
    archive = Archive.objects.select_for_update().filter(pk=archive_id).first()
    transaction.on_commit(lambda: sealing.delete_files([archive_id]))
    if archive is None:
        return
    archive.status = ArchiveStatus.FAILED
    archive.save(update_fields=["status"])
    record_event(
        EventType.ARCHIVE_FAILED,
        person=archive.person,
        purpose=EXPORT_PURPOSE,
        extra={"archive": str(archive.id), "reference": archive.reference, "error": error},
    )


def download_archive(
    archive_id: uuid.UUID, person: Person, *, page: bool = False, actor_kind: ActorKind = ActorKind.VISITOR
) -> tuple[Archive, Iterator[bytes]]:
    """Open a ready archive of ``person`` for download: the row, and its plaintext zip in chunks
    (with ``page``, its readable page instead: the HTML that is also the zip's ``index.html``).

    Asked of the gate; the archive's key is opened and the download recorded
    (``rights.archive_downloaded``, ``downloaded_at``) in the gate's transaction, before the
    first byte.  :class:`ArchiveUnavailable` for an archive that is not theirs, not ready, expired
    or whose file is missing; :class:`~piwarden.rights.sealing.SealedArchiveInvalid` when the
    file does not open with their key (moved or damaged): nothing is recorded then.
    """
    part = "page" if page else "zip"
    use = gate.Use("rights.archive.download", actor_kind=actor_kind, extra={"archive": str(archive_id), "part": part})
    with gate.processing(person, EXPORT_PURPOSE, categories={ARCHIVE_CATEGORY}, use=use) as permit:
        now = timezone.now()
        archive = (
            Archive.objects.select_for_update()
            .filter(pk=archive_id, person=permit.person, status=ArchiveStatus.READY, expires_at__gt=now)
            .first()
        )
        if archive is None:
            raise ArchiveUnavailable(str(archive_id))
        try:
            chunks = sealing.open_sealed(
                sealing.page_path(archive.id) if page else sealing.archive_path(archive.id),
                key=aead_for(permit.person.data_key_id),
                person_id=permit.person.pk,
                archive_id=archive.id,
                part=part,
            )
        except FileNotFoundError:
            raise ArchiveUnavailable(str(archive_id)) from None
        archive.downloaded_at = now
        archive.save(update_fields=["downloaded_at"])
        record_event(
            EventType.ARCHIVE_DOWNLOADED,
            actor_kind=actor_kind,
            person=permit.person,
            purpose=EXPORT_PURPOSE,
            extra={"archive": str(archive.id), "reference": archive.reference, "part": part},
        )
    return archive, chunks
