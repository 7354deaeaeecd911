"""The Simplified-Chinese catalogue: complete, compiled, faithful to its msgids, and really used.

The site is Chinese-first: ``/`` is zh-hans, ``/en/`` is English, and every
msgid in code and templates is English.  An untranslated or fuzzy entry would
show English text on the Chinese site, so the catalogue must be complete, and
the Chinese pages must actually render it.  Tests run against the compiled
``.mo`` (``make messages`` or the session fixture in ``conftest.py`` builds it).
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.template import engines
from django.templatetags.i18n import BlockTranslateNode, TranslateNode
from django.utils import translation

from piwarden.inquiries.forms import ConsultationForm
from piwarden.policy.declaration import load_declaration
from tests.conftest import consultation_data

LOCALE = Path(settings.LOCALE_PATHS[0])
PACKAGE = LOCALE.parent
PO = LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
TAG = re.compile(r"</?[a-zA-Z][^>]*>")
GETTEXT_FUNCTIONS = {"_", "gettext", "gettext_lazy", "gettext_noop"}
PGETTEXT_FUNCTIONS = {"pgettext", "pgettext_lazy"}


def _has_chinese(text: str) -> bool:
    """Han characters, or Chinese punctuation alone (a list separator such as 、 is a whole translation)."""
    han = any("\u4e00" <= c <= "\u9fff" for c in text)
    return han or (bool(text) and all("\u3000" <= c <= "\u303f" for c in text))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, gettext.GNUTranslations]:
    """msgfmt's own verdict on the .po, and the catalogue it compiles (ours alone, not Django's)."""
    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "msgfmt (GNU gettext) is needed to check the translations"
    mo = tmp_path_factory.mktemp("mo") / "django.mo"
    result = subprocess.run(  # noqa: S603  # fixed argv, our own file
        [msgfmt, "--check", "--statistics", f"--output-file={mo}", str(PO)],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    with mo.open("rb") as handle:
        return output, gettext.GNUTranslations(handle)


def _catalogue_pairs(catalogue: gettext.GNUTranslations) -> Iterator[tuple[str, str]]:
    plurals: dict[str, str] = {}
    for key, msgstr in catalogue._catalog.items():  # type: ignore[attr-defined]  # the parsed .mo
        if isinstance(key, tuple):
            plurals.setdefault(key[0], msgstr)  # Chinese has one form: msgstr[0]
        elif key:
            yield key, msgstr
    yield from plurals.items()


# --- (a) the catalogue itself -------------------------------------------------------


def test_msgfmt_reports_every_message_translated_and_none_fuzzy(compiled):
    output, _catalogue = compiled
    assert "translated message" in output, output
    assert "untranslated" not in output, output
    assert "fuzzy" not in output, output


def test_the_header_declares_simplified_chinese_with_one_plural_form(compiled):
    _output, catalogue = compiled
    info = catalogue.info()
    assert info["language"] == "zh_Hans"
    assert info["project-id-version"] == "piwarden"
    assert "charset=UTF-8" in info["content-type"]
    assert info["plural-forms"].replace(" ", "") == "nplurals=1;plural=0;"
    assert "#, fuzzy" not in PO.read_text(encoding="utf-8")


def test_every_translation_keeps_its_placeholders_and_markup_and_reads_as_chinese(compiled):
    _output, catalogue = compiled
    problems = []
    for msgid, msgstr in _catalogue_pairs(catalogue):
        if Counter(PLACEHOLDER.findall(msgid)) != Counter(PLACEHOLDER.findall(msgstr)):
            problems.append(f"placeholders differ: {msgid!r} -> {msgstr!r}")
        if Counter(TAG.findall(msgid)) != Counter(TAG.findall(msgstr)):
            problems.append(f"HTML tags differ: {msgid!r} -> {msgstr!r}")
        if not _has_chinese(msgstr):
            problems.append(f"not Chinese: {msgid!r} -> {msgstr!r}")
    assert not problems, "\n".join(problems)


# --- (b) every msgid in the sources is in the compiled catalogue ----------------------


def _python_msgids() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "testing" in path.relative_to(PACKAGE).parts:
            continue  # test helpers are not shipped text (makemessages --ignore 'testing/*')
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in GETTEXT_FUNCTIONS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                yield f"{path.relative_to(PACKAGE)}:{node.lineno}", node.args[0].value


def _python_context_msgids() -> Iterator[tuple[str, str, str]]:
    """(where, context, msgid) for every pgettext call: a msgid shared with another meaning gets its own entry."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if "testing" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in PGETTEXT_FUNCTIONS
                and len(node.args) >= 2  # context, msgid
                and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args[:2])
            ):
                context, msgid = (a.value for a in node.args[:2])  # type: ignore[attr-defined]
                yield f"{path.relative_to(PACKAGE)}:{node.lineno}", context, msgid


def _template_msgids() -> Iterator[tuple[str, str, str | None, str | None]]:
    """(where, msgid, msgid_plural, context) of every {% translate %} and {% blocktranslate %}, by Django's parser."""
    engine = engines["django"].engine  # type: ignore[attr-defined]
    for path in sorted(PACKAGE.rglob("*")):
        relative = path.relative_to(PACKAGE)
        if path.suffix not in {".html", ".txt"} or "templates" not in relative.parts or "testing" in relative.parts:
            continue
        nodelist = engine.from_string(path.read_text(encoding="utf-8")).nodelist
        for node in nodelist.get_nodes_by_type(TranslateNode):
            if not node.noop and node.filter_expression.var.literal is not None:
                yield str(relative), node.filter_expression.var.literal, None, _context(node.message_context)
        for block in nodelist.get_nodes_by_type(BlockTranslateNode):
            singular, _vars = block.render_token_list(block.singular)
            plural = block.render_token_list(block.plural)[0] if block.plural else None
            yield str(relative), singular, plural, _context(block.message_context)


def _context(expression: Any) -> str | None:
    """A constant context ("promise trace") compiles to its string; a Variable holds it as its literal."""
    if expression is None:
        return None
    return str(getattr(expression.var, "literal", expression.var))


def test_every_source_msgid_is_translated():
    assert list(_python_msgids()), "no gettext calls found: the scan is broken"
    assert list(_python_context_msgids()), "no pgettext calls found: the scan is broken"
    missing = []
    with translation.override("zh-hans"):
        for where, msgid in _python_msgids():
            if translation.gettext(msgid) == msgid:
                missing.append(f"{where}: {msgid!r}")
        for where, context, msgid in _python_context_msgids():
            if translation.pgettext(context, msgid) == msgid:
                missing.append(f"{where}: {msgid!r} (context {context!r})")
        for where, msgid, plural, context in _template_msgids():
            if context is not None:
                translated = (
                    translation.npgettext(context, msgid, plural, 2) if plural else translation.pgettext(context, msgid)
                )
            else:
                translated = translation.ngettext(msgid, plural, 2) if plural else translation.gettext(msgid)
            if translated in {msgid, plural}:
                missing.append(f"{where}: {msgid!r}")
    assert not missing, (
        "untranslated (run makemessages as the README says, translate, then `make messages`):\n" + "\n".join(missing)
    )


def test_key_texts_read_in_chinese():
    declaration = load_declaration()
    with translation.override("zh-hans"):
        consent = ConsultationForm.consent_text()
        assert "《隐私政策》" in consent
        assert declaration.version in consent
        assert str(declaration.controller.name) in consent
        assert translation.gettext("This field is required.") == "此项为必填项。"
        assert "请勾选" in translation.gettext("Please tick the box to agree, or we cannot process your request.")
        assert translation.gettext("Staff console") == "员工控制台"
        assert translation.gettext("Name") == "姓名"
        assert "已收到" in translation.gettext("This request had already been received; it was not submitted twice.")
    with translation.override("en"):
        assert "Privacy Policy" in ConsultationForm.consent_text()


# --- (c) the pages really render the catalogue ----------------------------------------


@pytest.mark.django_db
def test_the_chinese_form_is_in_chinese_and_the_english_form_in_english(client):
    chinese = client.get("/consultation/")
    assert chinese.status_code == HTTPStatus.OK
    assert chinese["Content-Language"] == "zh-hans"
    body = chinese.content.decode()
    for text in ("姓名", "联系电话", "提交咨询", "《隐私政策》", "验证码"):
        assert text in body, text
    assert "Send request" not in body

    english = client.get("/en/consultation/")
    assert english.status_code == HTTPStatus.OK
    assert english["Content-Language"] == "en"
    body = english.content.decode()
    for text in ("Name", "Contact number", "Send request", "Privacy Policy"):
        assert text in body, text
    for text in ("姓名", "提交咨询", "隐私政策"):
        assert text not in body, text


@pytest.mark.django_db
def test_chinese_errors_say_what_happened(client):
    response = client.post("/consultation/", consultation_data(name="", consent=None))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    body = response.content.decode()
    assert "此项为必填项。" in body
    assert "请勾选" in body
    assert "This field is required." not in body


@pytest.mark.django_db
def test_the_staff_sign_in_is_in_chinese(client):
    body = client.get("/backoffice/login/").content.decode()
    assert "员工控制台" in body
    assert "员工登录" in body
    assert "身份验证器" in body
