"""No other way in: the gate is the only code that decides on a person's choices or records its decisions.

DESIGN invariant 2 says no caller re-implements any part of the gate.  The review behind issue 6
found three hand-made "check, record the refusal, raise" copies, one of which bypassed
``survives_restriction``.  This reads the source (its syntax tree, so comments and docstrings do
not count) and fails on a new copy, wherever it appears:

* the gate's event types (``PROCESSING_REFUSED``, ``PROCESSING_UNDER_BASIS``, or their stored
  values) named outside the gate and the model that defines them;
* a person's restriction or erasure read (or filtered on in a query) outside the gate and the
  model that defines them;
* a :class:`Decision` or :class:`ProcessingRefused` made outside the gate;
* ``policy/`` importing a feature app (it is the declaration alone), and any import cycle
  between piwarden's modules, counting imports inside functions (one hid a cycle there).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "piwarden"
GATE = "piwarden/processing/gate.py"

GATE_EVENTS = {"PROCESSING_REFUSED", "PROCESSING_UNDER_BASIS"}
GATE_EVENT_VALUES = {"processing.refused", "processing.basis"}
PERSON_CHOICES = {"is_restricted", "is_erased", "restricted_at", "erased_at"}
GATE_RESULTS = {"Decision", "ProcessingRefused"}

# Where a name may appear although it is not the gate, and why.
DEFINED_HERE = {
    "piwarden/audit/models.py": "defines the event types",
    "piwarden/people/models.py": "defines the person's restriction and erasure",
}
# (module, function, name): a use that is not a decision about processing.
NOT_A_DECISION = {
    ("piwarden/people/actions.py", "erase_person", "is_erased"): "erasure is idempotent: it reads its own result",
    ("piwarden/people/personal_data.py", "export_lifecycle", "restricted_at"): "the export hands the person the date",
    ("piwarden/people/personal_data.py", "export_lifecycle", "erased_at"): "the export hands the person the date",
    ("piwarden/people/actions.py", "shred_people", "erased_at"): "erasure sets it, and skips whom it reached already",
    # rights-execute: the ledger, its replay and the restriction's own write paths
    ("piwarden/people/actions.py", "replay_erasure", "is_erased"): "replay is idempotent: it reads its own result",
    ("piwarden/people/actions.py", "replay_erasure", "erased_at"): "the ledger entry's time, for the audit reason",
    ("piwarden/people/actions.py", "restrict_processing", "restricted_at"): "restriction sets it",
    ("piwarden/people/actions.py", "restrict_processing", "is_erased"): "nothing is left to restrict once erased",
    ("piwarden/people/actions.py", "lift_restriction", "restricted_at"): "lifting clears it",
    ("piwarden/people/ledger.py", "_parse", "erased_at"): "a ledger entry's time",
    ("piwarden/people/ledger.py", "_erased_ids", "erased_at"): "the ledger compared with the database's erasures",
    # rights-rest: the sweep erases the people an unconfirmed rights request alone held
    ("piwarden/people/actions.py", "erase_unheld", "erased_at"): "erasure is idempotent: it reads its own result",
    # retention: the sweep and the cessation erase only whom no erasure reached yet
    (
        "piwarden/retention/actions.py",
        "erase_unheld_persons",
        "erased_at",
    ): "erasure is idempotent: it reads its own result",
    (
        "piwarden/retention/actions.py",
        "erase_people_batch",
        "erased_at",
    ): "erasure is idempotent: it reads its own result",
    ("piwarden/retention/sweep.py", "erase_people", "erased_at"): "the batches resume where erasure stopped",
    ("piwarden/retention/rules.py", "_linked_to_nothing", "erased_at"): (
        "the retention of the Person row itself: only the row of someone erased goes, once nothing links to it"
    ),
    # cessation: on the date everyone not erased yet is erased (resumable: the erased are skipped)
    ("piwarden/cessation/actions.py", "remaining", "erased_at"): "counts who is left to erase, for the progress",
    ("piwarden/cessation/actions.py", "erase_batch", "erased_at"): "erasure is idempotent: it reads its own result",
    # monitoring: the gate's refusals are read back from the log, counted and shown, never decided
    ("piwarden/monitoring/access.py", "", "PROCESSING_REFUSED"): "the security page lists the gate's refusals",
    ("piwarden/monitoring/rules.py", "", "PROCESSING_REFUSED"): "a rule counts the gate's refusals",
    # incidents: whom to notify leaves out the erased, whose addresses are destroyed (the gate decides
    # again when each notice is sent)
    ("piwarden/people/contacts.py", "holding", "erased_at"): "an erased person cannot be written to",
    # children: a guardian's link, a staff flag and the erasure of a child's data say "erased already"
    ("piwarden/children/access.py", "open_guardian_request", "is_erased"): "a link opens nothing once erased",
    ("piwarden/children/actions.py", "confirm_guardian_consent", "is_erased"): "no consent for erased data",
    ("piwarden/children/actions.py", "_record_consent", "is_erased"): "no consent for erased data",
    ("piwarden/children/actions.py", "decline_guardian_consent", "is_erased"): "nothing left to refuse once erased",
    ("piwarden/children/actions.py", "_flag", "is_erased"): "nothing left to flag once erased",
    ("piwarden/children/erasure.py", "erase_unconsented_child_data", "is_erased"): "erasure is idempotent",
}
# policy/ may import the vault's field types: the inventory checks that declared fields are encrypted.
POLICY_MAY_IMPORT = ("piwarden.policy", "piwarden.vault.fields")


@dataclass(frozen=True)
class Finding:
    module: str
    line: int
    function: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} ({self.function or 'module'}): {self.name}"


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # frozen history: the stored event values appear in their choices
        yield path.relative_to(SRC).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def gate_parts(module: str, tree: ast.Module) -> list[Finding]:
    """Every place in ``tree`` that decides or records as only the gate may."""
    found: list[Finding] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            name = None
            if isinstance(child, ast.Attribute) and child.attr in GATE_EVENTS | PERSON_CHOICES:
                name = child.attr
            elif isinstance(child, ast.Constant) and child.value in GATE_EVENT_VALUES:
                name = str(child.value)
            elif isinstance(child, ast.Call) and _called(child) in GATE_RESULTS:
                name = f"{_called(child)}(...)"
            elif isinstance(child, ast.keyword) and child.arg and child.arg.split("__")[0] in PERSON_CHOICES:
                name = child.arg.split("__")[0]  # a query that filters on the person's choices
            if name is not None and (module, function, name) not in NOT_A_DECISION:
                found.append(Finding(module, getattr(child, "lineno", 0), function, name))
            visit(child, inner)

    visit(tree, "")
    return found


def _called(call: ast.Call) -> str:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return ""


def test_only_the_gate_decides_on_a_persons_choices_and_records_its_decisions():
    found = [
        str(f)
        for module, tree in modules()
        if module != GATE and module not in DEFINED_HERE
        for f in gate_parts(module, tree)
    ]
    assert found == []


def test_the_gate_itself_is_found_by_the_scan():
    """The control: the scan sees the gate's own decisions, so a copy elsewhere would be seen too."""
    tree = ast.parse((SRC / GATE).read_text(encoding="utf-8"))
    names = {f.name for f in gate_parts(GATE, tree)}
    assert {"is_restricted", "is_erased", "PROCESSING_REFUSED", "PROCESSING_UNDER_BASIS", "Decision(...)"} <= names


HAND_MADE = """
def mail_everyone():
    return Person.objects.filter(restricted_at__isnull=True, erased_at=None)

def submit_inquiry(submission):
    with transaction.atomic():
        person = find_or_create_person(email=submission.email)
        if person.is_restricted:
            record_event(EventType.PROCESSING_REFUSED, person=person, purpose=PURPOSE)
            raise gate.ProcessingRefused(gate.Decision(False, PURPOSE, "", "restricted"))
"""


def test_a_hand_made_check_is_caught():
    """The copy the review found in the submission, and a query that decides in bulk: all reported."""
    found = gate_parts("piwarden/inquiries/actions.py", ast.parse(HAND_MADE))
    assert [(f.function, f.name) for f in found] == [
        ("mail_everyone", "restricted_at"),
        ("mail_everyone", "erased_at"),
        ("submit_inquiry", "is_restricted"),
        ("submit_inquiry", "PROCESSING_REFUSED"),
        ("submit_inquiry", "ProcessingRefused(...)"),
        ("submit_inquiry", "Decision(...)"),
    ]


# -- the import graph ------------------------------------------------------------------------------


def imports(tree: ast.Module, module: str, *, local: bool) -> Iterator[tuple[str, int]]:
    """piwarden modules imported at module level (or, with ``local``, inside functions)."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only: never executed
            function = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module and function == local:
                base = child.module
                if child.level:  # relative: resolve against the importing package
                    base = ".".join([*module.split(".")[: -child.level], child.module])
                for alias in child.names:
                    yield (f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base), child.lineno
            elif isinstance(child, ast.Import) and function == local:
                for alias in child.names:
                    yield alias.name, child.lineno
            yield from walk(child, function)

    for name, line in walk(tree, False):
        if name.startswith("piwarden"):
            yield name, line


def _is_module(dotted: str) -> bool:
    path = SRC.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def dotted(module: str) -> str:
    return module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def graph() -> dict[str, set[str]]:
    """Who imports whom, counting imports inside functions: one there must not hide a cycle."""
    edges: dict[str, set[str]] = {}
    for module, tree in modules():
        name = dotted(module)
        edges[name] = {t for local in (False, True) for t, _ in imports(tree, name, local=local) if t != name}
    return edges


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, if there is any (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_policy_is_the_declaration_alone():
    """policy/ imports no feature app: the gate that applies it lives in processing/."""
    found = [
        f"{module}:{line}: {target}"
        for module, tree in modules()
        if module.startswith("piwarden/policy/")
        for local in (False, True)
        for target, line in imports(tree, dotted(module), local=local)
        if not target.startswith(POLICY_MAY_IMPORT)
    ]
    assert found == []


def test_piwardens_modules_import_each_other_without_a_cycle():
    """Not even through a function-local import (the submission once imported its tasks so)."""
    assert cycle(graph()) is None


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"x": {"y"}, "y": {"z"}, "z": {"y"}}, ["y", "z", "y"]),
    ],
)
def test_the_cycle_search_finds_cycles(edges, expected):
    assert cycle(edges) == expected
