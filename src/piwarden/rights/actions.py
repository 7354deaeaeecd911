"""Write paths of the rights app: each an entry point in its own durable transaction, audited."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from tink import aead

from piwarden.audit.log import ActorKind, EventType, record_event
from piwarden.people.models import Person
from piwarden.people.registry import EXPORT_PURPOSE
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate
from piwarden.rights import sealing
from piwarden.rights.models import Archive, ArchiveStatus, DayKind, ScheduleDay, ScheduleYear
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
    record_event(
        EventType.SCHEDULE_LOADED,
        actor=by,
        extra={
            "year": year,
            "holidays": [d.isoformat() for d in holidays],
            "workdays": [d.isoformat() for d in workdays],
            "replaced": replaced_record,
        },
    )
    return LoadedSchedule(year=year, holidays=holidays, workdays=workdays, replaced=replaced)


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


def start_archive(person: Person, *, reference: str) -> StartedArchive:
    """The row of an archive about to be built, and the key to seal it, asked of the gate.

    An erased person gets ``ProcessingRefused`` and no row.  The gate's ``processing.basis``
    event records the use; the build's outcome is recorded by :func:`finish_archive` or
    :func:`fail_archive`.
    """
    use = gate.Use("rights.archive.start", extra={"reference": reference})
    with gate.processing(person, EXPORT_PURPOSE, categories={ARCHIVE_CATEGORY}, use=use) as permit:
        now = timezone.now()
        archive = Archive.objects.create(
            person=permit.person, reference=reference, created_at=now, expires_at=now + archive_lifetime()
        )
        return StartedArchive(archive, aead_for(permit.person.data_key_id))


def note_archive_progress(archive_id: uuid.UUID, *, records: int, categories: int) -> None:
    """How far the build got, for a page that shows progress (counts only; not audited)."""
    Archive.objects.filter(pk=archive_id, status=ArchiveStatus.BUILDING).update(
        records_done=records, categories_done=categories
    )


@transaction.atomic(durable=True)
def finish_archive(archive_id: uuid.UUID, *, size: int, sha256: str, counts: Mapping[str, int]) -> Archive | None:
    """Mark the archive ready and record ``rights.archive_built``; None when its row is gone.

    The row is gone when the person was erased (or the archive expired) while it was built: the
    caller then deletes the file it wrote.
    """
    archive = Archive.objects.select_for_update().filter(pk=archive_id, status=ArchiveStatus.BUILDING).first()
    if archive is None:
        return None
    archive.status = ArchiveStatus.READY
    archive.size, archive.sha256, archive.counts = size, sha256, dict(counts)
    archive.records_done, archive.categories_done = sum(counts.values()), len(counts)
    archive.save(update_fields=["status", "size", "sha256", "counts", "records_done", "categories_done"])
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
