"""Permissions are decided in one place: :mod:`piwarden.staff.permissions`.

Issue 8 §2: a role's grants (``[[roles]]`` in the declaration) become a yes or a no in one
module; views, decorators, access functions, write paths and templates ask it.  Before this,
four modules each read ``role.handle_rights``, ``role.read_audit`` or a staff member's groups in
their own way.  This reads the source (its syntax tree, so comments and docstrings do not count)
and the templates, in the spirit of ``tests/processing/test_one_gate.py``, and fails on another
way in:

* a role's grants read outside the permissions module (``.read_audit``, ``.handle_rights``,
  ``.reveal``, ``.may_reveal``, ...), or the declared roles listed to decide who holds one;
* a staff member's groups read, or filtered on in a query (``groups__name__in=...``);
* django-otp's ``is_verified()`` asked anywhere but there (a second, weaker "is this staff" check);
* a template testing a role's grant (``{% if role.read_audit %}``) instead of ``may.read_audit``.

The decisions themselves are tested through HTTP in ``tests/test_authorisation_matrix.py``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from piwarden.policy.declaration import load_declaration
from piwarden.staff import permissions
from piwarden.staff.permissions import Capability

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "piwarden"
DECIDES = "piwarden/staff/permissions.py"
DEFINES = "piwarden/policy/declaration.py"  # the Role model, its fields and their validation

ROLE_GRANTS = {
    "read_audit",
    "handle_rights",
    "all_inquiries",
    "assign_inquiries",
    "reveal",
    "reveal_categories",
    "may_reveal",
    "purposes_for",
}
MEMBERSHIP = {"groups", "is_verified", "roles", "_piwarden_role"}

# (module, function, name): a use that decides nothing, and why.
NOT_A_DECISION = {
    ("piwarden/staff/actions.py", "create_staff", "groups"): "gives the new account its role",
    ("piwarden/staff/personal_data.py", "export_account", "groups"): "the staff member's export names their roles",
    ("piwarden/staff/management/commands/createstaff.py", "add_arguments", "roles"): "the declared roles, as choices",
    ("piwarden/demo/fill.py", "make", "reveal"): "the demo's own method of that name, not a role's grant",
    ("piwarden/environment.py", "envhours", "groups"): "a regular expression's groups",
    ("piwarden/demo/fill.py", "write", "groups"): "a regular expression's groups",
    ("piwarden/backoffice/staff_forms.py", "role_choices", "roles"): "the declared roles, as choices",
    ("piwarden/backoffice/staff_views.py", "_staff_context", "roles"): "the staff page names each account's role",
    ("piwarden/backoffice/staff_views.py", "_staff_context", "groups"): "the staff page names each account's role",
    ("piwarden/staff/actions.py", "_declared_role_ids", "roles"): "the roles an account may be given",
    ("piwarden/staff/actions.py", "_invite", "groups"): "gives the new account its role",
    ("piwarden/staff/actions.py", "_change_role", "groups"): "changes the account's role",
    # access reviews: a review line keeps the roles the account held, as data to confirm or revoke
    ("piwarden/backoffice/views.py", "_review_row", "roles"): "shows the roles a review line recorded",
    ("piwarden/backoffice/views.py", "_training_rows", "roles"): "the training page names each account's role",
    ("piwarden/backoffice/views.py", "_training_rows", "groups"): "the training page names each account's role",
    ("piwarden/staff/actions.py", "_take_roles", "groups"): "a revocation removes the account's roles",
    ("piwarden/staff/actions.py", "decide_access", "roles"): "the review line's recorded roles",
    ("piwarden/staff/actions.py", "enforce_review_deadline", "roles"): "the review line's recorded roles",
    ("piwarden/staff/management/commands/staff.py", "review_show", "roles"): "prints the review line's roles",
    ("piwarden/staff/personal_data.py", "export_access_reviews", "roles"): "the export names the recorded roles",
    ("piwarden/staff/personal_data.py", "delete_accounts", "groups"): "a deleted account loses its roles",
    ("piwarden/staff/reviews.py", "declared_roles_of", "roles"): "records the roles an account holds, in a review",
    ("piwarden/staff/reviews.py", "declared_roles_of", "groups"): "records the roles an account holds, in a review",
    ("piwarden/staff/reviews.py", "document_of", "roles"): "the signed review's recorded roles",
}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        yield path.relative_to(SRC).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def decisions(module: str, tree: ast.Module) -> list[str]:
    """Every place in ``tree`` that reads a role's grants or a staff member's membership."""
    found: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            name = None
            if isinstance(child, ast.Attribute) and child.attr in ROLE_GRANTS | MEMBERSHIP:
                asks = isinstance(child.value, ast.Name) and child.value.id == "permissions"
                name = None if asks else child.attr  # permissions.may_reveal(...) asks the module
            elif isinstance(child, ast.keyword) and child.arg and child.arg.split("__")[0] == "groups":
                name = "groups"  # a query on who holds which role
            elif isinstance(child, ast.Constant) and child.value in {"_piwarden_role", "is_verified"}:
                name = str(child.value)  # getattr(user, "is_verified")
            if name is not None and (module, function, name) not in NOT_A_DECISION:
                found.append(f"{module}:{getattr(child, 'lineno', 0)} ({function or 'module'}): {name}")
            visit(child, inner)

    visit(tree, "")
    return found


def test_only_the_permissions_module_reads_a_roles_grants_or_a_staff_members_groups():
    found = [f for module, tree in modules() if module not in {DECIDES, DEFINES} for f in decisions(module, tree)]
    assert found == []


def test_the_scan_finds_a_check_made_another_way():
    """The control: the scan is not blind to the shapes it looks for."""
    smuggled = ast.parse(
        "def view(request):\n"
        "    role = staff_role(request.user)\n"
        "    if role.read_audit or role.handle_rights: ...\n"
        "    User.objects.filter(groups__name__in=['sales'])\n"
        "    getattr(request.user, 'is_verified')\n"
    )
    assert [f.rsplit(": ", 1)[1] for f in decisions("piwarden/backoffice/views.py", smuggled)] == [
        "read_audit",
        "handle_rights",
        "groups",
        "is_verified",
    ]


GRANT_IN_TEMPLATE = re.compile(r"\brole\.(?!name\b|id\b)\w+")


def test_templates_ask_may_not_the_role():
    found = []
    for path in sorted(PACKAGE.rglob("templates/**/*.html")):
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(SRC)}: {m.group(0)}" for m in GRANT_IN_TEMPLATE.finditer(text)]
    assert found == []
    assert GRANT_IN_TEMPLATE.search("{% if role.read_audit %}")  # the control
    assert not GRANT_IN_TEMPLATE.search("{{ role.name }}")


# --- the decisions, role by role, from the declaration --------------------------------------------

# What the declared roles grant (policy/declaration.toml); a change there must change this on purpose.
EXPECTED = {
    "sales": {Capability.SEE_INQUIRIES, Capability.FLAG_CHILD_DATA},
    "privacy_officer": {
        Capability.SEE_INQUIRIES,
        Capability.SEE_ALL_INQUIRIES,
        Capability.ASSIGN_INQUIRIES,
        Capability.READ_AUDIT,
        Capability.HANDLE_RIGHTS,
        Capability.TRACE_PROMISES,
        Capability.APPROVE_GRANTS,
        Capability.OPEN_GRANTS,
        Capability.REVIEW_ACCESS,
        Capability.RECORD_TRAINING,
        Capability.HANDLE_INCIDENTS,
        Capability.SEE_CHILDREN_DATA,
        Capability.FLAG_CHILD_DATA,
        Capability.PLACE_HOLDS,
    },
    "auditor": {
        Capability.READ_AUDIT,
        Capability.MONITOR_SECURITY,
        Capability.HANDLE_INCIDENTS,
        Capability.REVIEW_SECURITY_REFUSALS,
    },
    "admin": {Capability.MANAGE_STAFF, Capability.REQUEST_GRANTS, Capability.OPEN_GRANTS, Capability.MANAGE_DOWNLOADS},
}


@pytest.mark.parametrize("role_id", sorted(EXPECTED))
def test_each_declared_role_grants_what_the_declaration_says(role_id: str) -> None:
    role = load_declaration().role(role_id)
    assert {c for c in Capability if permissions.role_may(role, c)} == EXPECTED[role_id]
    assert {r.id for r in load_declaration().roles} == set(EXPECTED)


def test_no_role_grants_nothing() -> None:
    assert not any(permissions.role_may(None, c) for c in Capability)
    assert permissions.reveal_purposes(None, ["consultation"]) == []
    assert not permissions.may_reveal(None, "consultation", "respond_inquiry")
