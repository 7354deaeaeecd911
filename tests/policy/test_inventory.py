"""Everything that holds personal data is declared (DESIGN invariant 1), whoever's code stores it.

`piwarden policy check` covers the tables of every installed app (Django's staff accounts and
sessions, django-axes' lockout records, django-otp's devices, django-tasks-db's queue, the
CAPTCHA store) and the file stores apps write (the sealed outbox); an entry declared as holding
no personal data must say why; and the privacy page shows the new categories in both languages.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.html import escape

from piwarden.policy.declaration import DeclarationError, load_declaration, parse_declaration
from piwarden.policy.inventory import file_stores, inspect_inventory
from tests.policy.test_declaration import REPO, _piwarden, clean_env, edited, policy_dir

pytestmark = pytest.mark.duty("SEC-01")


def _fields_of_every_installed_model() -> set[str]:
    """The oracle, computed here and not by the inventory: every stored, non-key, non-link field."""
    return {
        f"{model._meta.app_label}.{model.__name__}.{f.name}"
        for model in apps.get_models()
        for f in model._meta.concrete_fields
        if not f.primary_key and not f.is_relation
    }


def test_every_field_of_every_installed_app_is_declared_once():
    declaration = load_declaration()
    personal = [f for c in declaration.categories for f in c.fields]
    non_personal = declaration.non_personal_fields
    declared = personal + non_personal
    assert len(declared) == len(set(declared))
    assert set(declared) == _fields_of_every_installed_model()
    assert inspect_inventory(declaration).problems == []


# One field of each app other than piwarden's: removing it from the declaration must fail the check.
OTHER_APPS = [
    "auth.User.email",
    "auth.Group.name",
    "contenttypes.ContentType.model",
    "sessions.Session.session_data",
    "otp_totp.TOTPDevice.key",
    "axes.AccessAttempt.ip_address",
    "axes.AccessLog.user_agent",
    "axes.AccessFailureLog.ip_address",
    "captcha.CaptchaStore.response",
    "django_tasks_database.DBTaskResult.args_kwargs",
    "django_tasks_database.DBTaskResult.traceback",
]


@pytest.mark.parametrize("path", OTHER_APPS)
def test_policy_check_fails_on_an_undeclared_field_of_a_library(declared, path):
    line = f'    "{path}",\n'
    declared(edited((line, "")))
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"1 problem\(s\)"):
        call_command("policy", "check", stdout=io.StringIO(), stderr=err)
    assert f"{path}: stores data but is not declared" in err.getvalue()


def _category_of(path: str) -> Any:
    category = load_declaration().category_of_field(path)
    assert category is not None, f"{path} is not declared as personal data"
    return category


@pytest.mark.parametrize(
    ("path", "purpose"),
    [
        ("auth.User.email", "staff_administration"),
        ("auth.User.first_name", "staff_administration"),
        ("auth.User.last_name", "staff_administration"),
        ("auth.User.username", "staff_administration"),
        ("staff.Authenticator.secret", "security"),
        ("sessions.Session.session_data", "security"),
        ("axes.AccessAttempt.ip_address", "security"),
        ("axes.AccessAttempt.user_agent", "security"),
        ("axes.AccessAttempt.post_data", "security"),
        ("axes.AccessLog.ip_address", "security"),
        ("axes.AccessFailureLog.user_agent", "security"),
        ("django_tasks_database.DBTaskResult.args_kwargs", "respond_inquiry"),
        ("django_tasks_database.DBTaskResult.return_value", "respond_inquiry"),
        ("django_tasks_database.DBTaskResult.traceback", "respond_inquiry"),
    ],
)
def test_what_holds_personal_data_is_declared_personal_with_its_purpose(path, purpose):
    assert purpose in _category_of(path).purposes


@pytest.mark.duty("RET-04")
def test_sign_in_records_are_kept_at_least_six_months_as_the_cybersecurity_law_requires():
    # Six calendar months are at most 184 days (July to December): fewer would break the law's
    # minimum for records written in July; the privacy text promises the same.
    for path in ("axes.AccessAttempt.ip_address", "axes.AccessLog.ip_address", "axes.AccessFailureLog.ip_address"):
        category = _category_of(path)
        assert category.retention_days >= 184
        assert category.after_retention == "delete"


def test_the_sealed_outbox_is_a_declared_encrypted_file_store():
    assert file_stores()["vault:outbox"].sealed
    category = load_declaration().category_of_store("vault:outbox")
    assert category is not None
    assert category.encrypted
    assert category.purposes == ["respond_inquiry", "answer_rights_request"]


# -- the schema: a non-personal entry carries its reason; file stores are checked like fields -----

FIRST_REASON = load_declaration().non_personal[0].reason


def test_a_non_personal_entry_without_a_reason_is_refused(tmp_path):
    text = edited((f'reason = "{FIRST_REASON}"\n', ""))
    with pytest.raises(DeclarationError, match=r"non_personal\[0\]\.reason: Field required"):
        parse_declaration(policy_dir(tmp_path, text) / "declaration.toml")


def test_a_non_personal_entry_with_an_empty_reason_is_refused(tmp_path):
    text = edited((f'reason = "{FIRST_REASON}"\n', 'reason = "n/a"\n'))
    with pytest.raises(DeclarationError, match=r"non_personal\[0\]\.reason: String should have at least 20"):
        parse_declaration(policy_dir(tmp_path, text) / "declaration.toml")


OUTBOX_FILES = 'files = ["vault:outbox"]\n'
KEYS_FILES = 'files = ["vault:keys", "vault:secret_key"]\n'
ONLY_SECRET_KEY = 'files = ["vault:secret_key"]\n'
OUTBOX_AND_SECRET = 'files = ["vault:outbox", "vault:secret_key"]\n'


@pytest.mark.parametrize(
    ("edits", "problem"),
    [
        (
            [(OUTBOX_FILES, 'files = ["vault:outbox", "vault:attachments"]\n')],
            "vault:attachments: is declared but no model or file store holds it",
        ),
        (
            [(OUTBOX_FILES, 'files = ["vault:secret_key"]\n'), (KEYS_FILES, 'files = ["vault:keys"]\n')],
            "vault:outbox: stores data but is not declared",
        ),
        (
            [(OUTBOX_FILES, 'files = ["vault:outbox", "vault:keys"]\n'), (KEYS_FILES, ONLY_SECRET_KEY)],
            "vault:keys: is in an encrypted category but is not an encrypted field, blind index or sealed file store",
        ),
        (
            [(OUTBOX_FILES, 'files = ["vault:keys"]\n'), (KEYS_FILES, OUTBOX_AND_SECRET)],
            "vault:outbox: is an encrypted field or sealed file store but is declared non_personal",
        ),
    ],
    ids=["unknown-store", "undeclared-store", "plain-store-in-encrypted-category", "sealed-store-as-non-personal"],
)
def test_policy_check_holds_file_stores_to_the_rules_of_fields(tmp_path, edits, problem):
    text = edited(*edits)
    report = inspect_inventory(parse_declaration(policy_dir(tmp_path, text) / "declaration.toml"))
    assert [p for p in report.problems if p.startswith(problem)], report.problems


def test_a_category_that_stores_nothing_is_refused(tmp_path):
    with pytest.raises(DeclarationError, match="'outbox_copies' names no fields and no files"):
        parse_declaration(policy_dir(tmp_path, edited((OUTBOX_FILES, ""))) / "declaration.toml")


def test_a_file_store_declared_twice_is_refused(tmp_path):
    text = edited((KEYS_FILES, 'files = ["vault:keys", "vault:secret_key", "vault:outbox"]\n'))
    with pytest.raises(DeclarationError, match="file store 'vault:outbox' is declared more than once"):
        parse_declaration(policy_dir(tmp_path, text) / "declaration.toml")


# -- the privacy page renders the new categories, in both languages -------------------------------

NEW_CATEGORIES = [
    "staff_accounts",
    "staff_authenticators",
    "staff_sessions",
    "sign_in_records",
    "queued_tasks",
    "outbox_copies",
]


@pytest.mark.django_db  # every page shows the cessation notice when one is announced: it reads the database
@pytest.mark.duty("NOT-02")
@pytest.mark.parametrize(
    ("url", "language", "retention", "basis"),
    [
        ("/privacy/", "zh-hans", "自登录尝试之日起 184 天", "履行法定职责或法定义务所必需"),
        ("/en/privacy/", "en", "184 days, from the attempt", "A statutory duty or obligation"),
    ],
)
@pytest.mark.django_db  # the notice of a policy change is read from the database
def test_the_privacy_page_shows_staff_and_security_categories(client, url, language, retention, basis):
    declaration = load_declaration()
    html = client.get(url).content.decode()
    table = html[html.index('id="collection-caption"') : html.index("</table>", html.index('id="collection-caption"'))]
    for category_id in NEW_CATEGORIES:
        category = declaration.category(category_id)
        assert escape(category.name.get(language)) in table
        assert escape(category.description.get(language)) in table
        for purpose_id in category.purposes:
            assert escape(declaration.purpose(purpose_id).name.get(language)) in table
    sign_in = table[table.index(escape(declaration.category("sign_in_records").name.get(language))) :]
    sign_in = sign_in[: sign_in.index("</tr>")]
    assert retention in sign_in
    assert basis in sign_in
    assert escape(declaration.purpose("security").basis_note.get(language)) in sign_in  # type: ignore[union-attr]


def test_an_app_that_opts_out_is_named_by_policy_check(tmp_path: Path):
    """Only `make bench`'s plaintext baseline opts out, and `policy check` says so: nothing hides."""
    env = clean_env(PIWARDEN_DATA_DIR=str(tmp_path), PIWARDEN_BENCH="on", PYTHONPATH=str(REPO / "bench"))
    bench = _piwarden("policy", "check", env=env)
    assert bench.returncode == 0, bench.stderr
    assert "not inventoried: app 'bench_baseline': make bench's plaintext comparison table" in bench.stdout

    normal = _piwarden("policy", "check", env=clean_env(PIWARDEN_DATA_DIR=str(tmp_path)))
    assert normal.returncode == 0, normal.stderr
    assert "not inventoried" not in normal.stdout
