"""The declaration (DESIGN invariant 1).

A declaration the site cannot use stops it from starting, with a message naming the file,
the key and what is wrong; `piwarden policy check` fails when code and declaration disagree.
The processing gate that applies the declaration is tested in tests/processing/.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from piwarden.policy.declaration import DeclarationError, load_declaration, parse_declaration
from piwarden.policy.inventory import inspect_inventory

REPO = Path(__file__).resolve().parents[2]
REAL_POLICY = REPO / "policy"
REAL_TEXT = (REAL_POLICY / "declaration.toml").read_text(encoding="utf-8")
VERSION_LINE = REAL_TEXT.splitlines().index('version = "1.0"') + 1

SECURITY_NOTE = (
    'basis_note = { zh-hans = "《网络安全法》要求留存网络日志不少于六个月", '
    'en = "The Cybersecurity Law requires network logs to be kept for at least six months" }\n'
)
CONSENT_RECORDS_REASON = 'unencrypted_reason = "Holds no identifying value: linked to a person only by an opaque id."\n'


def edited(*edits: tuple[str, str]) -> str:
    """The real declaration with targeted edits (each must apply: the test would prove nothing otherwise)."""
    text = REAL_TEXT
    for old, new in edits:
        assert old in text, f"edit does not apply: {old!r}"
        text = text.replace(old, new, 1)
    return text


def policy_dir(tmp_path: Path, text: str) -> Path:
    """A policy directory like the real one (texts and promise map included) holding ``text`` as its declaration."""
    directory = tmp_path / "policy"
    shutil.copytree(REAL_POLICY / "texts", directory / "texts")
    shutil.copy(REAL_POLICY / "promises.toml", directory / "promises.toml")
    (directory / "declaration.toml").write_text(text, encoding="utf-8")
    return directory


# (what is wrong, edits, fragments the message must contain: the key location and the problem)
BROKEN = {
    "invalid TOML": (
        [('version = "1.0"', 'version = "1.0')],
        ["is not valid TOML", f"line {VERSION_LINE}"],
    ),
    "missing hotline": ([('hotline = "95015"\n', "")], ["controller.hotline", "Field required"]),
    "unknown legal basis": (
        [('legal_basis = "consent"', 'legal_basis = "legitimate_interest"')],
        ["purposes[0] (id 'respond_inquiry').legal_basis", "'consent'", "'statutory_duty'"],
    ),
    "non-consent basis without note": (
        [(SECURITY_NOTE, "")],
        ["purposes[1] (id 'security')", "'statutory_duty'", "basis_note"],
    ),
    "category with unknown purpose": (
        [
            (
                'purposes = ["respond_inquiry", "answer_rights_request", "incident_notice", "cessation_notice", '
                '"policy_change_notice"]',
                'purposes = ["respond_inquiry", "marketing"]',
            )
        ],
        ["categories.consultation.purposes", "unknown purpose 'marketing'"],
    ),
    "role revealing unknown category": (
        [('reveal = { consultation = ["respond_inquiry"] }', 'reveal = { health = ["respond_inquiry"] }')],
        ["roles.sales.reveal", "unknown category 'health'"],
    ),
    "role granted a purpose the category does not declare": (
        [('reveal = { consultation = ["respond_inquiry"] }', 'reveal = { consultation = ["security"] }')],
        ["roles.sales.reveal.consultation", "grants purpose 'security'", "does not declare"],
    ),
    "role assigning requests it does not see": (
        [("all_inquiries = true\n", "")],
        ["roles.privacy_officer.assign_inquiries", "must see them all"],
    ),
    "field declared twice": (
        [('    "inquiries.Inquiry.product",\n', '    "inquiries.Inquiry.product",\n    "inquiries.Inquiry.name",\n')],
        ["categories.consultation.fields", "non_personal[3].fields", "'inquiries.Inquiry.name'", "more than once"],
    ),
    "retention of zero days": (
        [("retention_days = 730", "retention_days = 0")],
        ["categories[0] (id 'consultation').retention_days", "greater than or equal to 1"],
    ),
    "unencrypted category without reason": (
        [(CONSENT_RECORDS_REASON, "")],
        ["categories[2] (id 'consent_records')", "not encrypted", "unencrypted_reason"],
    ),
}


def test_the_real_declaration_parses(tmp_path):
    """The control for every case below: an unedited copy is accepted."""
    declaration = parse_declaration(policy_dir(tmp_path, edited()) / "declaration.toml")
    assert declaration.controller.hotline == "95015"
    assert declaration.digest == load_declaration().digest


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_declaration_is_refused_with_file_key_and_reason(tmp_path, case):
    edits, fragments = BROKEN[case]
    path = policy_dir(tmp_path, edited(*edits)) / "declaration.toml"
    with pytest.raises(DeclarationError) as refused:
        parse_declaration(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


def clean_env(**settings: str) -> dict[str, str]:
    """An operator's environment: none of the test run's own PIWARDEN_* settings (CAPTCHA test mode...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIWARDEN_", "DJANGO_"))}
    return {**env, **settings}


def _piwarden(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own command, fixed arguments
        [sys.executable, "-m", "piwarden", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=env["PIWARDEN_DATA_DIR"],
    )


@pytest.mark.parametrize(
    "case",
    [
        "invalid TOML",
        "unknown legal basis",
        "category with unknown purpose",
        "role granted a purpose the category does not declare",
    ],
)
def test_the_site_refuses_to_start_on_a_broken_declaration(tmp_path, case):
    edits, fragments = BROKEN[case]
    directory = policy_dir(tmp_path, edited(*edits))
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(PIWARDEN_POLICY_DIR=str(directory), PIWARDEN_DATA_DIR=str(data))

    result = _piwarden("check", env=env)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("piwarden: the privacy-policy declaration cannot be used:\n")
    assert str(directory / "declaration.toml") in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_the_site_starts_on_the_real_declaration(tmp_path):
    env = clean_env(PIWARDEN_POLICY_DIR=str(policy_dir(tmp_path, edited())), PIWARDEN_DATA_DIR=str(tmp_path))
    result = _piwarden("check", env=env)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


# -- piwarden policy check ------------------------------------------------------------------------


def test_policy_check_passes_on_the_real_declaration():
    out = io.StringIO()
    call_command("policy", "check", stdout=out)
    declaration = load_declaration()
    personal = sum(len(c.fields) for c in declaration.categories)
    files = sum(len(c.files) for c in declaration.categories)
    assert f"{personal} personal fields and {files} file store(s) in {len(declaration.categories)} categories" in (
        out.getvalue()
    )
    assert f"{len(declaration.non_personal_fields)} non-personal fields" in out.getvalue()
    assert "every stored field and file store is declared" in out.getvalue()
    assert inspect_inventory(declaration).problems == []


UNDECLARED = (('    "inquiries.Inquiry.position",\n', ""),)
UNSTORED = (('    "inquiries.Inquiry.region",\n', '    "inquiries.Inquiry.region",\n    "inquiries.Inquiry.fax",\n'),)
PLAIN_IN_ENCRYPTED = (
    ('    "inquiries.Inquiry.product",\n', ""),
    ('    "inquiries.Inquiry.region",\n', '    "inquiries.Inquiry.region",\n    "inquiries.Inquiry.product",\n'),
)
ENCRYPTED_AS_NON_PERSONAL = (
    ('    "inquiries.Inquiry.name",\n', ""),
    ('    "inquiries.Inquiry.product",\n', '    "inquiries.Inquiry.product",\n    "inquiries.Inquiry.name",\n'),
)


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize(
    ("edits", "problem"),
    [
        (UNDECLARED, "inquiries.Inquiry.position: stores data but is not declared"),
        (UNSTORED, "inquiries.Inquiry.fax: is declared but no model or file store holds it"),
        (PLAIN_IN_ENCRYPTED, "inquiries.Inquiry.product: is in an encrypted category but is not an encrypted"),
        (
            ENCRYPTED_AS_NON_PERSONAL,
            "inquiries.Inquiry.name: is an encrypted field or sealed file store but is declared non_personal",
        ),
    ],
    ids=["undeclared", "unstored", "plain-in-encrypted", "encrypted-as-non-personal"],
)
def test_policy_check_fails_when_code_and_declaration_disagree(tmp_path, declared, edits, problem):
    text = edited(*edits)
    report = inspect_inventory(parse_declaration(policy_dir(tmp_path / "direct", text) / "declaration.toml"))
    assert len(report.problems) == 1
    assert report.problems[0].startswith(problem)

    declared(text)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"1 problem\(s\)"):
        call_command("policy", "check", stdout=out, stderr=err)
    assert problem in err.getvalue()
    assert "is declared." not in out.getvalue()


def test_policy_check_reports_a_broken_declaration_as_a_command_error(declared):
    declared(edited(('hotline = "95015"\n', "")))
    with pytest.raises(CommandError, match=r"controller\.hotline: Field required"):
        call_command("policy", "check", stdout=io.StringIO(), stderr=io.StringIO())
