"""The promises the privacy texts make, and the code said to keep each one.

A sentence of ``policy/texts/privacy/<language>.html`` that promises behaviour carries its
promise id and the ids of the legal duties it keeps (the team's law reference) as attributes,
which a browser does not show::

    <span data-promise="P-34" data-duty="RGT-09">We will respond within …</span>

Both languages make the same promises (same ids, same duties).  The texts are read as the site
renders them, so a promise shows the numbers the declaration puts into it.  ``policy/promises.toml``
names, for each promise, the code that keeps it and the tests that prove it; a test counts for a
promise only when it is marked with one of the promise's duties (``piwarden.policy.trace``).
"""

from __future__ import annotations

import importlib
import re
import tomllib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from django.conf import settings
from django.template import engines
from django.utils import translation

from piwarden.policy.declaration import load_declaration

LANGUAGES = ("zh-hans", "en")
PROMISE_ID = re.compile(r"P-\d{2,3}")
# The binding duties of the law reference (sections A to I; the international anchors bind nothing here).
KNOWN_DUTIES = frozenset(
    [f"CON-{n:02}" for n in range(1, 8)]
    + [f"NOT-{n:02}" for n in range(1, 7)]
    + [f"RET-{n:02}" for n in range(1, 8)]
    + [f"SHR-{n:02}" for n in range(1, 7)]
    + [f"CHD-{n:02}" for n in range(1, 8)]
    + [f"RGT-{n:02}" for n in range(1, 13)]
    + [f"SEC-{n:02}" for n in range(1, 12)]
    + [f"XB-{n:02}" for n in range(1, 7)]
    + [f"CHG-{n:02}" for n in range(1, 3)]
)
_VOID = frozenset({"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})


class PromiseError(ValueError):
    """The texts' promise markup or the promise map is wrong (the message says where)."""


@dataclass(frozen=True)
class Promise:
    id: str
    duties: tuple[str, ...]
    text: str  # as shown, whitespace collapsed


@dataclass(frozen=True)
class Links:
    """What ``policy/promises.toml`` says keeps a promise."""

    code: tuple[str, ...]  # dotted names: module, or module.object[.attribute]
    tests: tuple[str, ...]  # test ids without parameters: tests/x/test_y.py::test_z


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.promises: list[Promise] = []
        self.problems: list[str] = []
        self._open: list[str] = []  # tag names from the root down
        self._collecting: tuple[int, str, tuple[str, ...], list[str]] | None = None  # depth, id, duties, text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        self._open.append(tag)
        given = dict(attrs)
        promise = given.get("data-promise")
        if promise is None:
            if "data-duty" in given:
                self.problems.append(f"line {self.getpos()[0]}: data-duty without data-promise")
            return
        line = self.getpos()[0]
        if self._collecting is not None:
            self.problems.append(f"line {line}: promise {promise} inside promise {self._collecting[1]}")
            return
        duties = tuple((given.get("data-duty") or "").split())
        if not PROMISE_ID.fullmatch(promise):
            self.problems.append(f"line {line}: {promise!r} is not a promise id (P-01, P-02, …)")
        if not duties:
            self.problems.append(f"line {line}: promise {promise} names no duty (data-duty)")
        for duty in duties:
            if duty not in KNOWN_DUTIES:
                self.problems.append(f"line {line}: promise {promise}: {duty!r} is not a duty of the law reference")
        self._collecting = (len(self._open), promise, duties, [])

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or tag not in self._open:
            return
        while self._open:
            closed = self._open.pop()
            if self._collecting is not None and len(self._open) < self._collecting[0]:
                _, promise, duties, parts = self._collecting
                self.promises.append(Promise(promise, duties, " ".join("".join(parts).split())))
                self._collecting = None
            if closed == tag:
                return

    def handle_data(self, data: str) -> None:
        if self._collecting is not None:
            self._collecting[3].append(data)


def read_promises(html: str) -> list[Promise]:
    """The promises marked in ``html``, in document order; PromiseError if the markup is wrong."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    if reader._collecting is not None:
        reader.problems.append(f"promise {reader._collecting[1]} is never closed")
    seen: set[str] = set()
    for promise in reader.promises:
        if promise.id in seen:
            reader.problems.append(f"promise {promise.id} is marked twice")
        seen.add(promise.id)
        if not promise.text:
            reader.problems.append(f"promise {promise.id} marks no text")
    if reader.problems:
        raise PromiseError("\n".join(reader.problems))
    return reader.promises


def rendered_text(language: str) -> str:
    """The privacy text in ``language`` as the privacy page shows it, read from the policy directory in force."""
    source = (Path(settings.POLICY_DIR) / "texts" / "privacy" / f"{language}.html").read_text(encoding="utf-8")
    with translation.override(language):
        return engines["django"].from_string(source).render({"policy": load_declaration()})


def promises_in(language: str) -> list[Promise]:
    try:
        return read_promises(rendered_text(language))
    except PromiseError as exc:
        raise PromiseError(f"policy/texts/privacy/{language}.html:\n{exc}") from None


def check_languages(by_language: dict[str, list[Promise]]) -> list[str]:
    """Where the languages' promises differ: ids, order or duties."""
    problems = []
    first, *others = by_language
    expected = [(p.id, p.duties) for p in by_language[first]]
    for language in others:
        found = [(p.id, p.duties) for p in by_language[language]]
        if found != expected:
            only_first = sorted(set(expected) - set(found))
            only_here = sorted(set(found) - set(expected))
            problems.append(
                f"the {language} text's promises differ from the {first} text's: only in {first}: "
                f"{only_first or 'none'}; only in {language}: {only_here or 'none'}"
                + ("" if only_first or only_here else " (the order differs)")
            )
    return problems


def map_path() -> Path:
    return Path(settings.POLICY_DIR) / "promises.toml"


def load_links(path: Path | None = None) -> dict[str, Links]:
    """``policy/promises.toml``: promise id → code and tests; PromiseError when it is malformed."""
    path = path or map_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PromiseError(f"{path.name}: cannot be read: {exc}") from None
    links: dict[str, Links] = {}
    problems = []
    for number, entry in enumerate(raw.get("promises", [])):
        promise = entry.get("id")
        unknown = set(entry) - {"id", "code", "tests"}
        code, tests = entry.get("code", []), entry.get("tests", [])
        if not isinstance(promise, str) or not PROMISE_ID.fullmatch(promise):
            problems.append(f"promises[{number}]: id {promise!r} is not a promise id")
            continue
        if promise in links:
            problems.append(f"promise {promise} appears twice")
        if unknown:
            problems.append(f"promise {promise}: unknown keys {sorted(unknown)}")
        if not _strings(code) or not _strings(tests):
            problems.append(f"promise {promise}: code and tests must be lists of strings")
            continue
        problems += [f"promise {promise}: test {t!r} is not path::name" for t in tests if "::" not in t or "[" in t]
        links[promise] = Links(tuple(code), tuple(tests))
    if problems:
        raise PromiseError("\n".join(f"{path.name}: {p}" for p in problems))
    return links


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def resolve(dotted: str) -> object:
    """The object a dotted name in the map names; ImportError or AttributeError when there is none."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError as exc:
            if exc.name is None or not dotted.startswith(exc.name):
                raise  # the module exists and imports something that does not: not a miss of ours
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(f"no module in {dotted!r}")


def promise_problems() -> list[str]:
    """What `piwarden policy check` reports about the promises: markup, languages, the map."""
    try:
        by_language = {language: promises_in(language) for language in LANGUAGES}
        links = load_links()
    except PromiseError as exc:
        return str(exc).splitlines()
    problems = check_languages(by_language)
    marked = {p.id for p in by_language[LANGUAGES[0]]}
    problems += [f"promises.toml: {p} is marked in no privacy text" for p in sorted(set(links) - marked)]
    problems += [f"promises.toml: {p} (marked in the texts) is missing" for p in sorted(marked - set(links))]
    for promise_id, named in sorted(links.items()):
        for dotted in named.code:
            try:
                resolve(dotted)
            except (ImportError, AttributeError) as exc:
                problems.append(f"promises.toml: {promise_id}: {dotted} does not import ({exc})")
    return problems
