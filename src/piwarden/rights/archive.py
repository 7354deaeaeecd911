"""The archive that answers an access or copy request (PIPL 45, policy §六): built and opened.

:func:`build_archive` assembles everything about a person from every declared category (through
:func:`piwarden.people.registry.export_person`, so through the gate, and complete by
construction) into one zip:

* ``data.json``: every category in the declaration's order, with its names and description in
  zh-hans and English, its records (or why it has none), the policy version and the generation time;
* ``<category>.csv``: one per category with records, a header row then one row per record
  (UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese right);
* ``index.html``: the same, readable in a browser (no script, no style, nothing from elsewhere);
* ``README.txt``: what each file is, in zh-hans and English.

The zip is sealed under the person's data key (:mod:`piwarden.rights.sealing`) under
``PIWARDEN_EXPORTS_DIR``, with a :class:`~piwarden.rights.models.Archive` row that expires after
the declared retention of ``rights_archives``.  The readable page is sealed beside it, so that a
page of the portal can stream it (:func:`open_archive_page`) without unpacking the zip.

Why a module of its own in ``rights``: the archive is the fulfilment of one kind of rights request
and knows nothing of the request itself (the intake passes a reference); the file format and
its keys are in :mod:`~piwarden.rights.sealing`, shared with the write paths (``actions``), which
may not import the builder (that would be a cycle).

**Streaming.**  Nothing holds all records: the records flow once from the exporters (each reads
its rows in chunks) into the zip, which is written entry by entry through the encrypting stream
(``zipfile`` on an unseekable stream writes data descriptors).  A category's CSV is written while
its records arrive (the export yields category by category, so one entry is open at a time).
The JSON and HTML files span every category, so they are written at the same time into two
temporary :class:`~piwarden.rights.sealing.Spool` parts (in memory up to 1 MB, then in a file
sealed under a key that lives only in memory) and copied into the zip at the end.  One pass
means one read of the database, one record of the gate, and files that agree with each other
(two passes could see different data).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import html
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext

from piwarden.people.models import Person
from piwarden.people.registry import Record, Section, export_person
from piwarden.policy.declaration import Category, Declaration, load_declaration
from piwarden.processing import gate
from piwarden.rights import actions, sealing
from piwarden.rights.models import ActingAs, Archive, ArchiveStatus, RequestKind, RequestStatus, RightsRequest

FORMAT = "piwarden-archive/1"
JSON_NAME, PAGE_NAME, README_NAME = "data.json", "index.html", "README.txt"
LANGUAGES = ("zh-hans", "en")
PROGRESS_EVERY = 2000  # records between two progress reports
STORE_PROGRESS_EVERY = 1.0  # seconds between two writes of the progress on the row

# (records done, categories done): called as the build goes (a task stores it on the row).
Progress = Callable[[int, int], None]

ArchiveUnavailable = actions.ArchiveUnavailable
SealedArchiveInvalid = sealing.SealedArchiveInvalid


def both(text: str) -> dict[str, str]:
    """A fixed text of ours in both languages (zh-hans from the catalogue)."""
    found = {}
    for language in LANGUAGES:
        with translation.override(language):
            found[language] = gettext(text)
    return found


_OWN = ("reference", "generated_at")  # the values of the page's head that differ from one archive to the next
_MARK = "piwarden-archive-value-%s"  # nothing the template or the declaration holds, unchanged by escaping


class _Fixed:
    """What every archive under one declaration says alike, made once per process and reused.

    The page's head and each category's heading, in the page and in ``data.json`` (its names and
    description in both languages, and the note of an empty one), depend on the declaration and
    our catalogues only, but for two values of the head; rendering them (templates with a switch
    of language at every label, pydantic dumps) for each archive was a fifth of a typical build's
    own work, outside the reading of the data.
    """

    def __init__(self, declaration: Declaration) -> None:
        self.declaration = declaration
        self._notes: dict[str, dict[str, str]] = {}
        self._sections: dict[tuple[str, str], bytes] = {}
        self._start: str | None = None
        self._end: bytes | None = None
        self._readmes: dict[tuple[str, ...], str] = {}
        self._entries: dict[tuple[str, str, str], bytes] = {}

    def note(self, text: str) -> dict[str, str]:
        if text not in self._notes:
            self._notes[text] = both(text)
        return self._notes[text]

    def start(self, head: dict[str, Any]) -> bytes:
        """The page's head: rendered once with a marker in place of each value of this archive's
        own (the reference, the time), which is then put in, escaped as the template would."""
        if self._start is None:
            marked = {**head, **{name: _MARK % name for name in _OWN}}
            context = {"head": marked, "declaration": self.declaration}
            self._start = render_to_string("rights/archive/start.html", context)
        page = self._start
        for name in _OWN:
            page = page.replace(_MARK % name, html.escape(str(head[name])))
        return page.encode()

    def end(self) -> bytes:
        if self._end is None:
            self._end = render_to_string("rights/archive/end.html", {}).encode()
        return self._end

    def readme(self, archive: Archive, csv_files: list[str]) -> str:
        """README.txt: written once per set of CSV files with markers for the archive's own values."""
        key = tuple(csv_files)
        if key not in self._readmes:
            self._readmes[key] = readme(_MARK % "reference", _MARK % "when", self.declaration, csv_files)
        text = self._readmes[key].replace(_MARK % "reference", archive.reference)
        return text.replace(_MARK % "when", archive.created_at.strftime("%Y-%m-%d %H:%M"))

    def entry(self, category: Category, section: Section) -> bytes:
        """The start of a category's object in ``data.json``, up to its records (left open)."""
        key = (category.id, section.subject.value, section.note)
        if key not in self._entries:
            entry: dict[str, Any] = {
                "id": category.id,
                "name": category.name.model_dump(by_alias=True),
                "description": category.description.model_dump(by_alias=True),
                "subject": section.subject.value,
            }
            if section.note:
                entry["note"] = self.note(section.note)
            self._entries[key] = _json(entry)[:-1]
        return self._entries[key]

    def section(self, category: Category, note: str) -> bytes:
        key = (category.id, note)
        if key not in self._sections:
            both_notes = self.note(note) if note else {}
            context = {"category": category, "note_zh": both_notes.get("zh-hans"), "note_en": both_notes.get("en")}
            self._sections[key] = render_to_string("rights/archive/section.html", context).encode()
        return self._sections[key]


_fixed: _Fixed | None = None


def _fixed_for(declaration: Declaration) -> _Fixed:
    global _fixed  # noqa: PLW0603  # one per process, replaced with the declaration
    if _fixed is None or _fixed.declaration is not declaration:
        _fixed = _Fixed(declaration)
    return _fixed


class _Sink(io.RawIOBase):
    """The zip's output: hashes and counts the plaintext, then hands it to the sealed file."""

    def __init__(self, out: sealing.SealedWriter) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.sha256.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# html.escape's five replacements as one pass over each cell (a typical archive has hundreds).
_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)  # one, not one per record as json.dumps makes


def _json(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


@dataclass
class _Build:
    """The state of one pass over the export."""

    archive: Archive
    declaration: Declaration
    zip: zipfile.ZipFile
    data: sealing.Spool
    page: sealing.Spool
    progress: Progress | None
    counts: dict[str, int] = field(default_factory=dict)
    records: int = 0
    category: Category | None = None
    section: Section | None = None
    columns: list[str] = field(default_factory=list)
    known: frozenset[str] = frozenset()
    csv_entry: io.TextIOWrapper | None = None
    csv_writer: Any = None
    csv_files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fixed = _fixed_for(self.declaration)

    def start(self, generated_at: datetime.datetime) -> None:
        head = {
            "format": FORMAT,
            "archive": str(self.archive.id),
            "reference": self.archive.reference,
            "person": self.archive.person.reference,
            "generated_at": generated_at.isoformat(),
            "policy_version": self.declaration.version,
            "controller": {"name": self.declaration.controller.name.model_dump(by_alias=True)},
        }
        self.data.write(_json(head)[:-1] + b', "categories": [')
        self.page.write(self.fixed.start(head))

    def open_section(self, section: Section) -> None:
        self.close_section()
        category = self.declaration.category(section.category)
        self.category, self.section, self.columns = category, section, []
        self.counts[category.id] = 0
        separator = b"," if len(self.counts) > 1 else b""
        self.data.write(separator + self.fixed.entry(category, section) + b', "records": [')
        self.page.write(self.fixed.section(category, section.note))

    def add(self, record: Record) -> None:
        assert self.category is not None  # noqa: S101  # export_person yields a Section first
        count = self.counts[self.category.id]
        if count == 0:
            self._open_table(record)
        row = [_cell(record.get(column)) for column in self.columns]
        if not self.known.issuperset(record):  # a key the first record did not have: kept, in the last column
            row[-1] = _cell({k: v for k, v in record.items() if k not in self.known})
        self.csv_writer.writerow(row)
        self.data.write((b"," if count else b"") + _json(record if isinstance(record, dict) else dict(record)))
        self.page.write(("<tr><td>" + "</td><td>".join([c.translate(_ESCAPE) for c in row]) + "</td></tr>\n").encode())
        self.counts[self.category.id] = count + 1
        self.records += 1
        if self.progress is not None and self.records % PROGRESS_EVERY == 0:
            self.progress(self.records, len(self.counts) - 1)

    def _open_table(self, first: Record) -> None:
        assert self.category is not None  # noqa: S101
        self.columns = [*first.keys(), "other"]
        self.known = frozenset(self.columns)
        name = f"{self.category.id}.csv"
        self.csv_files.append(name)
        self.csv_entry = io.TextIOWrapper(self.zip.open(name, "w", force_zip64=True), encoding="utf-8-sig", newline="")
        self.csv_writer = csv.writer(self.csv_entry)
        self.csv_writer.writerow(self.columns)
        heads = "".join(f"<th>{html.escape(column)}</th>" for column in self.columns)
        self.page.write(f"<table><thead><tr>{heads}</tr></thead><tbody>\n".encode())

    def close_section(self) -> None:
        if self.category is None:
            return
        count = self.counts[self.category.id]
        self.data.write(b'], "count": ' + str(count).encode() + b"}")
        if self.csv_entry is not None:
            self.csv_entry.close()
            self.csv_entry, self.csv_writer = None, None
            self.page.write(b"</tbody></table>\n")
        self.page.write(b"</section>\n")
        self.category = None
        if self.progress is not None:
            self.progress(self.records, len(self.counts))

    def finish(self, page_out: sealing.SealedWriter) -> None:
        self.close_section()
        self.data.write(b"]}\n")
        self.page.write(self.fixed.end())
        _copy(self.data.chunks(), self.zip, JSON_NAME)
        _copy(self.page.chunks(), self.zip, PAGE_NAME, tee=page_out)
        self.zip.writestr(README_NAME, self.fixed.readme(self.archive, self.csv_files))


def _copy(
    chunks: Iterable[bytes], archive: zipfile.ZipFile, name: str, tee: sealing.SealedWriter | None = None
) -> None:
    with archive.open(name, "w", force_zip64=True) as entry:
        for chunk in chunks:
            entry.write(chunk)
            if tee is not None:
                tee.write(chunk)


def readme(reference: str, when: str, declaration: Declaration, csv_files: list[str]) -> str:
    """README.txt: what the archive is and what each file holds, zh-hans first, then English
    (``when``: the time it was prepared, UTC)."""
    parts = []
    for language in LANGUAGES:
        with translation.override(language):
            lines = [
                gettext("Your personal information held by %(controller)s")
                % {"controller": declaration.controller.name.get(language)},
                gettext(
                    "Request reference: %(reference)s. Prepared: %(when)s (UTC). Privacy policy version: %(version)s."
                )
                % {
                    "reference": reference,
                    "when": when,
                    "version": declaration.version,
                },
                "",
                gettext("The files in this archive:"),
                f"- {JSON_NAME}: "
                + gettext(
                    "every category of information we hold about you, in the order of our privacy policy, "
                    "with its name in Chinese and English and its records (machine-readable JSON)."
                ),
                f"- {PAGE_NAME}: " + gettext("the same information as a page to read in a web browser."),
            ]
            for name in csv_files:
                category = declaration.category(name.removesuffix(".csv"))
                lines.append(
                    f"- {name}: "
                    + gettext("the records of “%(category)s”, one row each (CSV, UTF-8).")
                    % {"category": category.name.get(language)}
                )
            lines.append(f"- {README_NAME}: " + gettext("this explanation."))
            lines += [
                "",
                gettext(
                    "A category without a CSV file holds no records about you; data.json says why where there is "
                    "a reason. Questions: %(hotline)s, %(email)s."
                )
                % {"hotline": declaration.controller.hotline, "email": declaration.controller.email},
            ]
            parts.append("\n".join(lines))
    return "\n\n----------------------------------------\n\n".join(parts) + "\n"


def build_archive(
    person: Person, *, reference: str, progress: Progress | None = None, store_progress: bool = False
) -> Archive:
    """Build, seal and store the archive of everything about ``person``; returns its row, ready.

    ``reference`` names the rights request (in the file, the audit and the row).  ``progress`` is
    called with (records done, categories done) as the build goes; with ``store_progress`` the
    counts are also written on the row (at most once a second) for a page to show.  The gate is
    asked first, once, for the export; the archive's row is written in its transaction (one
    record of the basis for both): an erased person gets ``ProcessingRefused`` and no row or file.
    On any failure the files are deleted and the row marked failed (``rights.archive_failed``);
    :class:`ArchiveUnavailable` when the person was erased while it was built (the erasure
    deleted the row; the file is deleted too).
    """
    declaration = load_declaration()
    row = actions.prepare_archive(person, reference=reference)
    archive_id = row.instance.pk
    begun: list[actions.StartedArchive] = []
    items = export_person(
        person,
        declaration,
        context=f"rights.archive:{archive_id}",
        extra={"reference": reference},
        within=lambda permit: begun.append(actions.start_archive(permit, row)),
    )
    try:
        # The gate, the archive's row and the record of the use: one transaction, before any file.
        first = next(items)
        started = begun[0]
        if store_progress:
            progress = _stored(started.archive, progress)
        digest, size, counts = _write(started, person, declaration, _chained(first, items), progress)
    except BaseException as exc:
        if begun:  # the row was written: it is marked failed, its files deleted
            actions.fail_archive(archive_id, error=type(exc).__name__)
        raise
    ready = actions.finish_archive(started.archive, size=size, sha256=digest, counts=counts)
    if ready is None:
        sealing.delete_files([archive_id])
        raise ArchiveUnavailable(str(archive_id))
    return ready


def _stored(archive: Archive, then: Progress | None) -> Progress:
    # The first write after a second of building: a build done sooner (a typical person's takes
    # milliseconds) goes from building to ready with its counts, and a page polling it shows that.
    last = time.monotonic()

    def report(records: int, categories: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= STORE_PROGRESS_EVERY:
            actions.note_archive_progress(archive.id, records=records, categories=categories)
            last = now
        if then is not None:
            then(records, categories)

    return report


def _write(
    started: actions.StartedArchive,
    person: Person,
    declaration: Declaration,
    items: Iterator[Section | Record],
    progress: Progress | None,
) -> tuple[str, int, dict[str, int]]:
    """One pass over the export into the sealed zip and page; (sha256, size, counts) of the zip."""
    archive = started.archive
    keys = {"key": started.key, "person_id": person.pk, "archive_id": archive.id}
    out = sealing.SealedWriter(sealing.archive_path(archive.id), part="zip", **keys)
    page_out: sealing.SealedWriter | None = None
    data, page = sealing.Spool(), sealing.Spool()
    try:
        page_out = sealing.SealedWriter(sealing.page_path(archive.id), part="page", **keys)
        sink = _Sink(out)
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zipped:
            build = _Build(archive, declaration, zipped, data, page, progress)
            build.start(timezone.now())
            for item in items:
                if isinstance(item, Section):
                    build.open_section(item)
                else:
                    build.add(item)
            build.finish(page_out)
        out.close()
        page_out.close()
    except BaseException:
        out.abandon()
        if page_out is not None:
            page_out.abandon()
        raise
    finally:
        data.close()
        page.close()
    return sink.sha256.hexdigest(), sink.size, build.counts


def _chained(first: Section | Record, rest: Iterator[Section | Record]) -> Iterator[Section | Record]:
    yield first
    yield from rest


def open_archive(archive_id: Any, person: Person) -> Iterator[bytes]:
    """The archive's zip, decrypted in chunks, for a download view; the download is recorded first.

    :class:`ArchiveUnavailable` (answer 404) for an archive that is not this person's, not ready,
    expired or missing; ``ProcessingRefused`` for an erased person;
    :class:`SealedArchiveInvalid` for a file that does not open with their key.
    """
    _, chunks = actions.download_archive(archive_id, person)
    return chunks


def open_archive_page(archive_id: Any, person: Person) -> Iterator[bytes]:
    """The archive's readable page (its ``index.html``), decrypted in chunks, for a page of the portal."""
    _, chunks = actions.download_archive(archive_id, person, page=True)
    return chunks


def archive_context(archive: Archive) -> dict[str, Any]:
    """What a status page shows about an archive (no personal value): view-ready, in the active language."""
    declaration = load_declaration()
    names = {c.id: str(c.name) for c in declaration.categories}
    return {
        "archive": archive,
        "status": archive.get_status_display(),
        "records_done": archive.records_done,
        "categories_done": archive.categories_done,
        "categories_total": len(declaration.categories),
        "counts": [(names.get(category, category), count) for category, count in archive.counts.items()],
        "expires_at": archive.expires_at,
        "download_ready": archive.status == "ready" and archive.expires_at > timezone.now(),
    }


def render_archive_status(archive: Archive) -> str:
    """The status fragment of an archive (progress, counts per category, expiry), for a portal page."""
    return render_to_string("rights/archive/status.html", archive_context(archive))


# --- the archive of a request, as its status page tells it (rights-rest) -----------------------

# The kinds whose completion builds an archive (``rights.fulfil``: for the person's own request).
ARCHIVE_KINDS = (RequestKind.ACCESS, RequestKind.COPY)


def archive_of_request(request: RightsRequest) -> Archive | None:
    """The newest archive built for this request, if it is of a kind that has one (plain columns only)."""
    if request.executed_as not in ARCHIVE_KINDS:
        return None
    return (
        Archive.objects.filter(person_id=request.record_id, reference=request.reference).order_by("-created_at").first()
    )


def open_request_archive(request: RightsRequest) -> Iterator[bytes]:
    """The zip of the archive that answers ``request``, for its person, decrypted in chunks (the
    download recorded first): what the portal's and the API's downloads send.

    :class:`ArchiveUnavailable` when the request has no archive ready (none built, expired,
    failed) or its person was erased since.
    """
    archive = archive_of_request(request)
    if archive is None:
        raise ArchiveUnavailable(request.reference)
    try:
        return open_archive(archive.id, Person.objects.get(pk=request.record_id))
    except gate.ProcessingRefused:
        raise ArchiveUnavailable(str(archive.id)) from None


@dataclass(frozen=True)
class RequestArchive:
    """What the status page says about the archive of a completed access or copy request.

    ``state``: ``ready`` (downloadable until ``expires_at``), ``building``, ``failed`` or
    ``expired`` (``expires_at`` when the row is still there; the retention sweep deletes it, and
    then the date is no longer known).
    """

    state: str
    expires_at: datetime.datetime | None = None
    lifetime_days: int = 0


def request_archive(request: RightsRequest) -> RequestArchive | None:
    """The archive's state for the status page of ``request``; None when the request has none (not
    an access or copy request, not completed, made for someone else, or not executed)."""
    executed = request.fulfilled_at is not None and (request.acting_as == ActingAs.SELF or request.subject_id)
    if request.executed_as not in ARCHIVE_KINDS or request.status != RequestStatus.COMPLETED or not executed:
        return None
    days = actions.archive_lifetime().days
    archive = archive_of_request(request)
    if archive is None:
        # Queued but not started yet, or deleted by the sweep once expired.
        assert request.completed_at is not None  # noqa: S101  # a completed request has its date
        gone = timezone.now() >= request.completed_at + actions.archive_lifetime()
        return RequestArchive("expired" if gone else "building", lifetime_days=days)
    if archive.status == ArchiveStatus.FAILED:
        return RequestArchive("failed", lifetime_days=days)
    if archive.expires_at <= timezone.now():
        return RequestArchive("expired", archive.expires_at, days)
    if archive.status == ArchiveStatus.BUILDING:
        return RequestArchive("building", archive.expires_at, days)
    return RequestArchive("ready", archive.expires_at, days)
