"""The privacy texts' promises: marked in both languages alike, each with its duties, each with
its code and tests named in policy/promises.toml, and the marks invisible on the page."""

from __future__ import annotations

import ast
import io
import re
import shutil
from functools import cache
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from piwarden.policy.promises import (
    KNOWN_DUTIES,
    LANGUAGES,
    PromiseError,
    check_languages,
    load_links,
    promises_in,
    read_promises,
    resolve,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_text_marks_its_promises_with_known_duties(language):
    promises = promises_in(language)
    assert len(promises) >= 70
    assert [p.id for p in promises] == [f"P-{n:02}" for n in range(1, len(promises) + 1)]  # in reading order
    assert all(p.duties and set(p.duties) <= KNOWN_DUTIES for p in promises)
    assert all(p.text and "{" not in p.text for p in promises)  # rendered: the declaration's values filled in


def test_both_languages_make_the_same_promises_with_the_same_duties():
    by_language = {language: promises_in(language) for language in LANGUAGES}
    assert check_languages(by_language) == []
    texts = {language: {p.id: p.text for p in promises} for language, promises in by_language.items()}
    # The same promise: the 15 working days and the six months appear in the same promise in both texts.
    for promise_id in ("P-64",):
        assert "15" in texts["en"][promise_id]
        assert "15" in texts["zh-hans"][promise_id]
    assert "six months" in texts["en"]["P-12"]
    assert "六个月" in texts["zh-hans"]["P-12"]


def test_a_difference_between_the_languages_is_named():
    en = read_promises('<p data-promise="P-01" data-duty="CON-02">a</p><p data-promise="P-02" data-duty="RGT-09">b</p>')
    zh = read_promises(
        '<p data-promise="P-01" data-duty="CON-02">甲</p><p data-promise="P-02" data-duty="RGT-08">乙</p>'
    )
    [problem] = check_languages({"zh-hans": zh, "en": en})
    assert "('P-02', ('RGT-09',))" in problem
    assert "('P-02', ('RGT-08',))" in problem
    swapped = read_promises(
        '<p data-promise="P-02" data-duty="RGT-08">乙</p><p data-promise="P-01" data-duty="CON-02">甲</p>'
    )
    [problem] = check_languages({"zh-hans": zh, "en": swapped})
    assert "order" in problem


def test_the_reader_takes_spans_inside_paragraphs_and_attributes_on_elements():
    html = (
        '<p>Intro. <span data-promise="P-01" data-duty="RGT-09 RGT-10">We answer <strong>within 15</strong>\n'
        "   working days.</span> Not a promise.</p>"
        '<ul><li data-promise="P-02" data-duty="SEC-01">Encrypted<br>at rest.</li><li>Other.</li></ul>'
    )
    first, second = read_promises(html)
    assert (first.id, first.duties, first.text) == ("P-01", ("RGT-09", "RGT-10"), "We answer within 15 working days.")
    assert (second.id, second.duties, second.text) == ("P-02", ("SEC-01",), "Encryptedat rest.")


@pytest.mark.parametrize(
    ("html", "message"),
    [
        ('<p data-promise="P-01">x</p>', "names no duty"),
        ('<p data-promise="P-01" data-duty="ABC-01">x</p>', "'ABC-01' is not a duty"),
        ('<p data-promise="P-01" data-duty="INT-02">x</p>', "'INT-02' is not a duty"),  # an anchor, not binding
        ('<p data-promise="X1" data-duty="CON-02">x</p>', "not a promise id"),
        ('<p data-duty="CON-02">x</p>', "data-duty without data-promise"),
        ('<p data-promise="P-01" data-duty="CON-02">x</p><p data-promise="P-01" data-duty="CON-02">y</p>', "twice"),
        (
            '<p data-promise="P-01" data-duty="CON-02">a <span data-promise="P-02" data-duty="CON-02">b</span></p>',
            "inside",
        ),
        ('<p data-promise="P-01" data-duty="CON-02"> </p>', "marks no text"),
        ('<div><p data-promise="P-01" data-duty="CON-02">never closed', "never closed"),
    ],
)
def test_wrong_markup_is_refused_with_what_is_wrong(html, message):
    with pytest.raises(PromiseError, match=re.escape(message)):
        read_promises(html)


@pytest.mark.parametrize(("url", "language"), [("/privacy/", "zh-hans"), ("/en/privacy/", "en")])
def test_the_page_carries_the_marks_and_shows_nothing_of_them(client: Client, url, language):
    page = client.get(url).content.decode()
    shown = read_promises(page)  # the page as served: the same promises as the text alone
    assert [(p.id, p.duties) for p in shown] == [(p.id, p.duties) for p in promises_in(language)]
    visible = re.sub(r"<[^>]+>", "", page)  # the marks live in tags only: no id or duty in the text shown
    assert not re.search(r"P-\d\d|data-duty|data-promise", visible)
    assert not re.search(r"\b(CON|RGT|SEC|RET)-\d\d\b", visible)


def test_the_marks_add_only_attributes_and_spans_no_style_reaches():
    """Every span in the texts is a mark (the texts had none before), and no style rule selects a span
    or the marks' attributes: the page looks as it did (the browser test compares the pictures)."""
    for language in LANGUAGES:
        source = (REPO / "policy" / "texts" / "privacy" / f"{language}.html").read_text(encoding="utf-8")
        spans = re.findall(r"<span[^>]*>", source)
        assert spans
        assert all(re.fullmatch(r'<span data-promise="P-\d\d" data-duty="[A-Z0-9 -]+">', span) for span in spans)
    css = (REPO / "src" / "piwarden" / "site" / "static" / "piwarden" / "site.css").read_text(encoding="utf-8")
    assert not re.search(r"\.policy[^{]*\bspan\b|data-promise|data-duty", css)


def test_the_map_names_every_promise_once_and_nothing_else():
    links = load_links()
    assert sorted(links) == sorted(p.id for p in promises_in("en"))


def test_a_promise_with_tests_names_the_code_they_prove():
    assert [promise for promise, named in load_links().items() if named.tests and not named.code] == []


def test_every_code_object_the_map_names_imports():
    problems = []
    for promise_id, named in load_links().items():
        for dotted in named.code:
            try:
                resolve(dotted)
            except (ImportError, AttributeError) as exc:
                problems.append(f"{promise_id}: {dotted}: {exc}")
    assert problems == []


def test_resolve_tells_a_missing_object_from_a_module():
    assert resolve("piwarden.processing.gate.processing").__name__ == "processing"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        resolve("piwarden.processing.gate.no_such_function")
    with pytest.raises(ImportError):
        resolve("no_such_package.anything")


@cache
def _duty_marks(path: Path) -> dict[str, set[str]]:
    """Test name → the duties its decorators and its module's pytestmark give it (read from the source)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            module |= _duties_in(node.value)
    return {
        node.name: module | set().union(*(_duties_in(d) for d in node.decorator_list))
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def _duties_in(node: ast.AST) -> set[str]:
    return {
        str(call.args[0].value)
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "duty"
        and call.args
        and isinstance(call.args[0], ast.Constant)
    }


def test_every_test_the_map_names_exists_and_is_marked_with_one_of_the_promises_duties():
    """The static half of the rule the trace applies to each run's results."""
    duties = {p.id: set(p.duties) for p in promises_in("en")}
    problems = []
    for promise_id, named in load_links().items():
        for test in named.tests:
            path, _, name = test.partition("::")
            marks = _duty_marks(REPO / path).get(name) if (REPO / path).is_file() else None
            if marks is None:
                problems.append(f"{promise_id}: {test} does not exist")
            elif not marks & duties[promise_id]:
                problems.append(f"{promise_id}: {test} is marked {sorted(marks)}, not {sorted(duties[promise_id])}")
    assert problems == []


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[promises]]\nid = "P-01"\ncode = []\ntests = []\n[[promises]]\nid = "P-01"\n', "appears twice"),
        ('[[promises]]\nid = "one"\n', "is not a promise id"),
        ('[[promises]]\nid = "P-01"\ncode = "x"\n', "lists of strings"),
        ('[[promises]]\nid = "P-01"\ntests = ["tests/x.py"]\n', "is not path::name"),
        ('[[promises]]\nid = "P-01"\ntests = ["tests/x.py::test_y[1]"]\n', "is not path::name"),
        ('[[promises]]\nid = "P-01"\nnote = "x"\n', "unknown keys"),
        ("[[promises]\n", "cannot be read"),
    ],
)
def test_a_wrong_map_is_refused_with_what_is_wrong(tmp_path, toml, message):
    path = tmp_path / "promises.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(PromiseError, match=re.escape(message)):
        load_links(path)


def check(settings, tmp_path: Path, edits: dict[str, tuple[str, str]]) -> str:
    """`piwarden policy check` on a copy of the policy directory with ``edits`` (file → old, new)."""
    policy = tmp_path / "policy"
    shutil.copytree(settings.POLICY_DIR, policy)
    for name, (old, new) in edits.items():
        text = (policy / name).read_text(encoding="utf-8")
        assert old in text, f"edit does not apply: {old!r}"
        (policy / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    settings.POLICY_DIR = policy
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("policy", "check", stdout=io.StringIO(), stderr=err)
    return err.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (
            {
                "texts/privacy/en.html": (
                    'data-promise="P-64" data-duty="RGT-09"',
                    'data-promise="P-64" data-duty="RGT-08"',
                )
            },
            "the en text's promises differ from the zh-hans text's",
        ),
        (
            {"texts/privacy/zh-hans.html": ('data-promise="P-47" data-duty="SEC-02"', 'data-duty="SEC-02"')},
            "data-duty without data-promise",
        ),
        ({"promises.toml": ('id = "P-78"', 'id = "P-99"')}, "P-99 is marked in no privacy text"),
        ({"promises.toml": ('"piwarden.rights.clock.due_date"]', '"piwarden.rights.clock.gone"]')}, "does not import"),
    ],
)
def test_policy_check_fails_on_marks_or_a_map_that_disagree(settings, tmp_path, edits, message):
    assert message in check(settings, tmp_path, edits)


@pytest.mark.django_db
def test_policy_check_passes_on_the_real_texts_and_map():
    out = io.StringIO()
    call_command("policy", "check", stdout=out)
    assert "promises are marked alike in both languages" in out.getvalue()
