"""The file types staff may publish: an allow-list, each type recognised by its content.

A file is accepted only when its first bytes (and, for the Office formats, the parts inside the
zip) are those of a type on the list *and* its name ends with one of that type's extensions.  The
Content-Type it is served with comes from here, never from the uploader's browser.  Nothing that a
browser would run is on the list (no HTML, SVG, XML or script).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

HEAD = 8  # bytes read to recognise a type


@dataclass(frozen=True)
class Kind:
    id: str
    label: str
    content_type: str
    extensions: tuple[str, ...]


def _zip_names(file: IO[bytes]) -> set[str] | None:
    try:
        file.seek(0)
        with zipfile.ZipFile(file) as archive:
            return set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    finally:
        file.seek(0)


def _office(folder: str) -> Callable[[bytes, IO[bytes]], bool]:
    def matches(head: bytes, file: IO[bytes]) -> bool:
        if not head.startswith(b"PK\x03\x04"):
            return False
        names = _zip_names(file)
        return names is not None and "[Content_Types].xml" in names and any(n.startswith(folder) for n in names)

    return matches


def _plain_zip(head: bytes, file: IO[bytes]) -> bool:
    return head.startswith(b"PK\x03\x04") and _zip_names(file) is not None


PDF = Kind("pdf", "PDF", "application/pdf", (".pdf",))
PNG = Kind("png", "PNG", "image/png", (".png",))
JPEG = Kind("jpeg", "JPEG", "image/jpeg", (".jpg", ".jpeg"))
DOCX = Kind("docx", "Word", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx",))
XLSX = Kind("xlsx", "Excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",))
PPTX = Kind(
    "pptx", "PowerPoint", "application/vnd.openxmlformats-officedocument.presentationml.presentation", (".pptx",)
)
ZIP = Kind("zip", "ZIP", "application/zip", (".zip",))

# In the order they are tried: the Office formats before the plain zip they are made of.
_SIGNATURES: tuple[tuple[Kind, Callable[[bytes, IO[bytes]], bool]], ...] = (
    (PDF, lambda head, _: head.startswith(b"%PDF-")),
    (PNG, lambda head, _: head.startswith(b"\x89PNG\r\n\x1a\n")),
    (JPEG, lambda head, _: head.startswith(b"\xff\xd8\xff")),
    (DOCX, _office("word/")),
    (XLSX, _office("xl/")),
    (PPTX, _office("ppt/")),
    (ZIP, _plain_zip),
)
KINDS = {kind.id: kind for kind, _ in _SIGNATURES}


def recognise(file: IO[bytes], filename: str) -> Kind | None:
    """The allowed type ``file`` is, if its content says so and ``filename`` agrees; else None."""
    file.seek(0)
    head = file.read(HEAD)
    file.seek(0)
    lowered = filename.lower()
    for kind, matches in _SIGNATURES:
        if matches(head, file):
            return kind if lowered.endswith(kind.extensions) else None
    return None


def extensions() -> list[str]:
    return [ext for kind in KINDS.values() for ext in kind.extensions]
