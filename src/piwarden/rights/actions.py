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

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.people.actions import find_or_create_person
from piwarden.processing import gate
from piwarden.rights import clock
from piwarden.rights.codes import code_digest, new_code, normalise_code, same_digest
from piwarden.rights.models import (
    CODE_ATTEMPTS,
    CODE_DIGITS,
    CODE_LIFETIME,
    OPEN_STATUSES,
    REFERENCE_LENGTH,
    ActingAs,
    CodePurpose,
    DayKind,
    RequestKind,
    RequestStatus,
    RequestStep,
    RightsRequest,
    ScheduleDay,
    ScheduleYear,
    VerificationCode,
)
from piwarden.rights.tasks import send_code_mail, send_receipt_mail
from piwarden.vault import blind

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

# The declared purpose and category (policy/declaration.toml) of a request's personal fields.
PURPOSE = "answer_rights_request"
CATEGORY = "rights_requests"


@dataclass(frozen=True)
class RequestInput:
    """A validated request (``rights.forms.RightsRequestForm.to_input``), as every interface gives it."""

    kind: RequestKind
    email: str
    details: str
    acting_as: ActingAs
    language: str


def submit_request(given: RequestInput, *, context: str = "rights.submit") -> RightsRequest:
    """Store a request, awaiting verification, and queue the e-mail with its one-time code.

    The requester is the person with this e-mail (found by its blind index, or created): the
    request's encrypted fields are sealed under their data key.  One transaction, the gate's,
    holds the request, its first step, the code, the audit event and the queued e-mail.  The
    answer is the same whether the address was known or not: a new request with a new reference.
    Two first requests with one new e-mail meet the person's unique index: the loser runs again.
    """
    for last_attempt in (False, True):
        try:
            return _submit(given, context)
        except IntegrityError:
            if last_attempt:
                raise
    raise AssertionError("unreachable")


def _submit(given: RequestInput, context: str) -> RightsRequest:
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
    step.save(force_insert=True)
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
    request = (
        RightsRequest.objects.select_for_update()
        .select_related("person")
        .filter(reference=normalise_reference(reference))
        .first()
    )
    if request is None or len(code) != CODE_DIGITS or not code.isdigit():
        return CodeCheck(CodeOutcome.WRONG)
    now = timezone.now()
    codes = VerificationCode.objects.filter(request=request, purpose__in=purposes).defer("sealed_code")
    digests = {purpose: code_digest(request.pk, purpose, code) for purpose in purposes}
    matched = next((c for c in codes if same_digest(c.code_hash, digests[CodePurpose(c.purpose)])), None)
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
    VerificationCode.objects.filter(pk=matched.pk).update(used_at=now, sealed_code=None)
    if request.status == RequestStatus.AWAITING_VERIFICATION and matched.purpose == CodePurpose.VERIFY:
        _receive(request, now)
    return CodeCheck(CodeOutcome.OK, request)


def _receive(request: RightsRequest, now: datetime) -> None:
    """Verified: the request is received on the PRC day it was submitted, and due 15 working days later."""
    received_on = clock.day_of_receipt(request.submitted_at)
    due = clock.due_date(received_on)
    request.status = RequestStatus.RECEIVED
    request.verified_at = now
    request.received_on = received_on
    request.due_on = due.date
    request.due_provisional = due.provisional
    request.save(update_fields=["status", "verified_at", "received_on", "due_on", "due_provisional"])
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
    send_receipt_mail.enqueue(str(request.pk))


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
