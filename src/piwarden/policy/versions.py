"""The published versions as the site reads them: the files in force as a snapshot, each stored
version's declaration parsed again, and its texts rendered as they read when it was published."""

from __future__ import annotations

import datetime
import hashlib
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandParser
from django.db import DatabaseError
from django.http import HttpRequest
from django.template import engines
from django.utils.safestring import SafeString

from piwarden.policy.declaration import Declaration, load_declaration, validate_declaration
from piwarden.policy.models import MaterialKind, PolicyVersion


@dataclass(frozen=True)
class Snapshot:
    """The declaration file and every text under ``texts/``, as bytes on disk say now."""

    declaration: str
    texts: dict[str, str]

    @property
    def digest(self) -> str:
        return digest_of(self.declaration, self.texts)


def digest_of(declaration: str, texts: dict[str, str]) -> str:
    """The digest :func:`~piwarden.policy.declaration.parse_declaration` computes for the same files."""
    digest = hashlib.sha256(declaration.encode())
    for name in sorted(texts):
        digest.update(texts[name].encode())
    return digest.hexdigest()


def current_snapshot() -> Snapshot:
    root = Path(settings.POLICY_DIR)
    texts_dir = root / "texts"
    return Snapshot(
        (root / "declaration.toml").read_text(encoding="utf-8"),
        {p.relative_to(texts_dir).as_posix(): p.read_text(encoding="utf-8") for p in sorted(texts_dir.rglob("*.html"))},
    )


_parsed: dict[str, Declaration] = {}


def declaration_of(version: PolicyVersion) -> Declaration:
    """The declaration ``version`` published, parsed and validated again (once per process)."""
    found = _parsed.get(version.digest)
    if found is None:
        raw = tomllib.loads(version.declaration)
        found = validate_declaration(raw, source=f"policy version {version.number}").model_copy(
            update={"digest": version.digest}
        )
        _parsed[version.digest] = found
    return found


def text_name(language: str | None) -> str:
    return "privacy/en.html" if (language or "").startswith("en") else "privacy/zh-hans.html"


def render_text(version: PolicyVersion, language: str | None, request: HttpRequest | None = None) -> SafeString:
    """The privacy text of ``version`` in ``language``, rendered with that version's own declaration.

    The texts are templates of the site's own (published by the operator, like the files in
    force): rendered as the privacy page renders the text in force.
    """
    source = version.texts.get(text_name(language), "")
    template = engines["django"].from_string(source)
    return SafeString(template.render({"policy": declaration_of(version)}, request))


# --- the version in force and the notice every page shows ---------------------------------------

NOTICE_TTL = 30.0  # seconds a process trusts what it read: a version published elsewhere shows within this

_notice_cache: dict[str, tuple[float, PolicyVersion | None]] = {}


def material_notice() -> PolicyVersion | None:
    """The latest published version that made a material change, if any (read at most every ``NOTICE_TTL`` s)."""
    key = load_declaration().digest
    cached = _notice_cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < NOTICE_TTL:
        return cached[1]
    try:
        latest = PolicyVersion.objects.exclude(kinds=[]).order_by("-number").first()
    except DatabaseError:
        return None  # an error page while the database is down: no notice, and nothing kept
    _notice_cache.clear()
    _notice_cache[key] = (now, latest)
    return latest


def forget() -> None:
    """Drop what this process read (after a publish in this process, and between tests)."""
    _notice_cache.clear()
    _parsed.clear()


def publish_arguments(parser: CommandParser) -> None:
    """The options of ``piwarden policy publish`` (``piwarden revisions publish``, which does it)."""
    parser.add_argument(
        "--effective",
        type=datetime.date.fromisoformat,
        help="publish: the effective date (YYYY-MM-DD); must match policy.effective in declaration.toml",
    )
    parser.add_argument("--notice-zh", type=Path, help="publish: a material change's notice, in Chinese (a file)")
    parser.add_argument("--notice-en", type=Path, help="publish: the same notice in English (a file)")
    parser.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=[k.value for k in MaterialKind],
        help="publish: a material kind the declaration cannot show (controller: a change of ownership; "
        "impact_assessment: an impact assessment found a high risk); repeat for several",
    )
    parser.add_argument(
        "--explicit-consent-will-be-sought",
        action="store_true",
        help="publish: confirm that a version reducing people's rights is applied to each person only with "
        "their explicit consent",
    )
