"""What changed between two declarations, which material kinds of §十 that makes, and the purposes'
fingerprints that decide whether a consent still counts."""

from __future__ import annotations

import hashlib
import tomllib

import pytest

from piwarden.policy.changes import compare, compare_texts
from piwarden.policy.declaration import Declaration, validate_declaration
from piwarden.policy.models import MaterialKind
from tests.policy.test_declaration import REAL_TEXT, edited

# The consultation category's retention (the first "retention_days = 730" of the file).
LONGER_RETENTION = ("retention_days = 730", "retention_days = 1095")
HOTLINE = ('hotline = "95015"', 'hotline = "95016"')
CONTROLLER = ('name = { zh-hans = "奇安信科技集团股份有限公司"', 'name = { zh-hans = "奇安信网络科技有限公司"')
ENABLED = (
    'en = "QI-Anxin Legendsec Information Technology (Beijing) Inc." }\nenabled = false',
    'en = "QI-Anxin Legendsec Information Technology (Beijing) Inc." }\nenabled = true',
)
NO_COMPLAINT = ('"deceased_relative", "complaint"]', '"deceased_relative"]')
SLOWER = ("response_working_days = 15", "response_working_days = 20")
NEW_CATEGORY = (
    "# --- what holds no personal information, and why",
    """[[categories]]
id = "browsing"
name = { zh-hans = "浏览记录", en = "Browsing history" }
description = { zh-hans = "您浏览的页面", en = "The pages you viewed" }
purposes = ["respond_inquiry"]
encrypted = true
retention_days = 30
retention_from = { zh-hans = "自浏览之日起", en = "from the visit" }
after_retention = "delete"
fields = ["inquiries.Inquiry.pages"]

# --- what holds no personal information, and why""",
)


def declaration(*edits: tuple[str, str]) -> Declaration:
    text = edited(*edits) if edits else REAL_TEXT
    parsed = validate_declaration(tomllib.loads(text), source="test")
    return parsed.model_copy(update={"digest": hashlib.sha256(text.encode()).hexdigest()})


@pytest.mark.duty("CHG-01")
@pytest.mark.parametrize(
    ("edits", "kinds"),
    [
        ([LONGER_RETENTION], {MaterialKind.PURPOSES}),
        ([NEW_CATEGORY], {MaterialKind.PURPOSES}),
        ([CONTROLLER], {MaterialKind.CONTROLLER}),
        ([ENABLED], {MaterialKind.RECIPIENTS}),
        ([NO_COMPLAINT], {MaterialKind.RIGHTS}),
        ([SLOWER], {MaterialKind.RIGHTS}),
        ([HOTLINE], {MaterialKind.CONTACT}),
        ([HOTLINE, ENABLED], {MaterialKind.CONTACT, MaterialKind.RECIPIENTS}),
        ([('id = "energy"\nname = { zh-hans = "能源"', 'id = "energy"\nname = { zh-hans = "能源行业"')], set()),
    ],
)
def test_the_declaration_shows_the_material_kinds_it_can(edits, kinds) -> None:
    comparison = compare(declaration(), declaration(*edits))
    assert comparison.kinds == kinds


def test_each_section_says_what_changed_in_the_readers_language() -> None:
    old, new = declaration(), declaration(LONGER_RETENTION, HOTLINE, NO_COMPLAINT)
    en = {s.id: s.lines for s in compare(old, new, "en").sections}
    assert [(line.what, line.before, line.after) for line in en["contact"]] == [("changed", "95015", "95016")]
    assert [(line.what, line.item) for line in en["rights"]] == [("removed", "Question or complain about this policy")]
    (retention,) = en["categories"]
    assert retention.item == "How long “Consultation request details” is kept"
    assert retention.before.startswith("730 days from submission")
    assert retention.after.startswith("1095 days")
    zh = {s.id: s.lines for s in compare(old, new, "zh-hans").sections}
    assert zh["categories"][0].item == "“咨询请求信息”的保存期限"
    assert en["purposes"] == zh["purposes"] == ()


@pytest.mark.duty("CHG-01")
def test_fewer_rights_or_a_longer_deadline_reduce_rights() -> None:
    assert compare(declaration(), declaration(NO_COMPLAINT)).reductions == (
        "the right 'complaint' is no longer offered",
    )
    assert compare(declaration(), declaration(SLOWER)).reductions == (
        "requests would be answered in 20 working days instead of 15",
    )
    # More rights, or a shorter deadline, reduce nothing.
    assert compare(declaration(NO_COMPLAINT), declaration()).reductions == ()
    assert compare(declaration(SLOWER), declaration()).reductions == ()


@pytest.mark.duty("CON-03")
def test_the_purpose_fingerprint_covers_its_categories_and_their_retention() -> None:
    before = declaration().purpose_fingerprint("respond_inquiry")
    # A new category under the purpose, and a longer retention of one of its categories: stale.
    assert declaration(NEW_CATEGORY).purpose_fingerprint("respond_inquiry") != before
    assert declaration(LONGER_RETENTION).purpose_fingerprint("respond_inquiry") != before
    assert compare(declaration(), declaration(NEW_CATEGORY)).stale_purposes == ("respond_inquiry",)
    # Another purpose of the category, or a field renamed, changes nothing the person agreed to.
    renamed = ('"inquiries.Inquiry.name",', '"inquiries.Inquiry.full_name",')
    assert declaration(renamed).purpose_fingerprint("respond_inquiry") == before
    assert compare(declaration(), declaration(HOTLINE)).stale_purposes == ()


def test_the_texts_are_compared_paragraph_by_paragraph() -> None:
    old = "<h2>Part 10</h2><p>We answer in <strong>15</strong> days.</p><p>Unchanged.</p>"
    new = "<h2>Part 10</h2><p>We answer in <strong>10</strong> days.</p><p>Unchanged.</p><p>New &amp; more.</p>"
    changes = compare_texts(old, new)
    assert [(c.removed, c.added) for c in changes] == [
        (("We answer in 15 days.",), ("We answer in 10 days.",)),
        ((), ("New & more.",)),
    ]
