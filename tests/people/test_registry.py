"""Every declared data category has an exporter and an eraser (DESIGN invariant 8).

The registry (``piwarden.people.registry``) is filled by each app's ``personal_data.py`` at
start-up; ``piwarden policy check`` and the system checks fail on a declared category without
both halves, so a new category cannot ship without them.
"""

from __future__ import annotations

import io

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError

from piwarden.people.checks import check_exporters_and_erasers
from piwarden.people.registry import (
    Deletes,
    Keeps,
    Shredded,
    Subject,
    Unattributable,
    coverage_problems,
    handlers,
)
from piwarden.policy.declaration import load_declaration
from piwarden.policy.inventory import inspect_inventory
from tests.policy.test_declaration import edited

pytestmark = pytest.mark.duty("RGT-02")

# A field of the consultation category moved into a category of its own: the inventory is still
# complete (the field is declared once), so the only thing missing is the new category's halves.
SPLIT = (
    (
        '    "inquiries.Inquiry.region",\n]',
        "]",
    ),
    (
        '[[categories]]\nid = "identifiers"',
        '[[categories]]\nid = "consultation_region"\n'
        'name = { zh-hans = "国家/地区", en = "Country / region" }\n'
        'description = { zh-hans = "您所在的国家或地区", en = "Your country or region" }\n'
        'purposes = ["respond_inquiry"]\nencrypted = true\nretention_days = 730\n'
        'retention_from = { zh-hans = "自提交之日起", en = "from submission" }\nafter_retention = "delete"\n'
        'fields = ["inquiries.Inquiry.region"]\n\n'
        '[[categories]]\nid = "identifiers"',
    ),
)


def test_every_declared_category_has_an_exporter_and_an_eraser():
    declaration = load_declaration()
    registered = handlers()
    assert coverage_problems(declaration) == []
    assert {c.id for c in declaration.categories} == set(registered)
    for handler in registered.values():
        assert handler.export is not None
        assert isinstance(handler.erase, Deletes | Keeps | Shredded | Unattributable)
        if isinstance(handler.erase, Keeps):
            assert len(handler.erase.reason) > 40, f"{handler.category}: a kept category says why"


def test_every_visitor_eraser_erases_many_people_at_once():
    """The retention sweep erases a batch of people per transaction: an eraser without a set-based
    form would run once a person there (``erase_people_categories``' fallback)."""
    for handler in handlers().values():
        if handler.subject is not Subject.VISITOR:
            continue
        erase = handler.erase
        if isinstance(erase, Deletes) or (isinstance(erase, Keeps) and erase.restrict is not None):
            assert erase.many is not None, f"{handler.category}: register it with {type(erase).__name__}.people()"


def test_every_visitor_category_serves_the_rights_purpose_the_export_asks_the_gate_for():
    declaration = load_declaration()
    for handler in handlers().values():
        if handler.subject is Subject.VISITOR:
            assert "answer_rights_request" in declaration.category(handler.category).purposes


def test_policy_check_fails_on_a_category_without_exporter_or_eraser(declared):
    declared(edited(*SPLIT))
    declaration = load_declaration()
    assert inspect_inventory(declaration).problems == []  # the one problem is the registry's
    err = io.StringIO()

    # Two: the registry's, and the retention schedule's (piwarden.retention.rules: a rule per category).
    with pytest.raises(CommandError, match=r"2 problem\(s\)"):
        call_command("policy", "check", stdout=io.StringIO(), stderr=err)

    assert "category 'consultation_region': has no exporter and no eraser" in err.getvalue()
    assert "category 'consultation_region': no retention rule" in err.getvalue()
    # The same rule runs as a system check at start-up and in the test suite.
    assert check_exporters_and_erasers in checks.registry.registry.get_checks()
    errors = check_exporters_and_erasers()
    assert [(m.id, m.msg) for m in errors] == [("piwarden.E003", coverage_problems(declaration)[0])]


def test_policy_check_passes_with_every_category_covered():
    out = io.StringIO()
    call_command("policy", "check", stdout=out, stderr=io.StringIO())
    assert "every category has an exporter and an eraser" in out.getvalue()
