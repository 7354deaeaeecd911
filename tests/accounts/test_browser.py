"""An account's life in Chromium (issue 9 §1 tests): sign up → the confirmation e-mail (from a
real SMTP server) → sign in → change the password → cancel; then the canary: none of the
person's values, ciphertexts or look-up digests is left in any row or in the database's bytes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from playwright.sync_api import Browser, Page, expect

from piwarden.accounts.models import Account, AccountAuthenticator, LoginRecord
from piwarden.people.models import Person
from piwarden.vault.blind import email_index
from piwarden.vault.models import DataKey
from tests.accounts.in_browser import WORDS, link_from, open_account
from tests.accounts.test_totp import code_for
from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import SHOTS
from tests.screenshots import screenshot
from tests.vault.test_canary import assert_absent, assert_absent_from_every_row, read_if_present, sqlite_files

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.duty("RGT-11"),
    pytest.mark.duty("RET-03"),
    pytest.mark.duty("SEC-01"),
]

PASSWORD = "lanterns over the quiet river"  # a test password
NEW_PASSWORD = "seven small boats at dawn"


def sign_up_in_chinese(page: Page, base: str, values: dict[str, str]) -> None:
    page.goto(f"{base}/account/sign-up/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    page.fill("[name=email]", values["email"])
    page.fill("[name=phone]", values["phone"])
    page.fill("[name=date_of_birth]", "1991-08-09")
    page.fill("[name=password]", "short")
    expect(page.locator("[data-strength-output]")).to_contain_text("太短")  # the script, as typed
    page.fill("[name=password]", PASSWORD)
    expect(page.locator("[data-strength-output]")).to_contain_text("29")
    page.fill("[name=captcha_1]", "PASSED")
    page.check("[name=accept]")
    screenshot(page, str(SHOTS / "account-sign-up-zh.png"))
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url("**/account/sign-up/sent/")


def sign_in_and_change_password(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/en/account/sign-in/")

    page.fill("[name=email]", email)
    page.fill("[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/en/account/")
    expect(page.locator("[data-account-email]")).to_have_text(email)
    expect(page.locator("[data-login-log]")).to_contain_text("Signed in")
    screenshot(page, str(SHOTS / "account-home-en.png"))

    page.get_by_role("link", name="Change your password").click()
    page.fill("[name=current]", PASSWORD)
    page.fill("[name=password]", NEW_PASSWORD)
    page.get_by_role("button", name="Change the password").click()
    expect(page.locator("h1")).to_have_text("Password changed")


def test_sign_up_confirm_sign_in_change_password_cancel_and_nothing_is_left(
    live_server, page: Page, smtp, settings
) -> None:
    settings.PIWARDEN_SITE_URL = live_server.url
    tag = uuid.uuid4().hex[:12]
    values = {"email": f"canary-{tag}@example.com", "phone": "139" + str(uuid.uuid4().int)[:8]}
    SHOTS.mkdir(parents=True, exist_ok=True)

    sign_up_in_chinese(page, live_server.url, values)
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)
    page.goto(link_from(smtp, values["email"], "/account/verify/"))
    page.get_by_role("button", name="确认我的电子邮箱").click()
    expect(page.locator("h1")).to_have_text("电子邮箱已确认")
    sign_in_and_change_password(page, live_server.url, values["email"])

    account = Account.objects.get(email_index=email_index(values["email"]))
    person = Person.objects.get(pk=account.person_id)
    sealed = Account.objects.filter(pk=account.pk).values_list("email", "phone", "date_of_birth").get()
    wrapped = bytes(DataKey.objects.get(pk=person.data_key_id).wrapped)
    digest = account.email_index

    page.goto(f"{live_server.url}/en/account/cancel/")
    page.fill("[name=password]", NEW_PASSWORD)
    page.check("[name=confirm]")
    page.get_by_role("button", name="Cancel my account").click()
    page.wait_for_url("**/en/account/cancelled/")
    page.goto(f"{live_server.url}/en/account/")
    page.wait_for_url("**/en/account/sign-in/")

    # The canary: the values, their ciphertexts, the wrapped data key and the e-mail's digest are gone.
    assert not Account.objects.exists()
    assert LoginRecord.objects.filter(person=person).exists()  # the login log stays, for its retention
    assert_absent_from_every_row(values)
    gone = {f"sealed{i}": bytes(c).hex() for i, c in enumerate(sealed)} | {"key": wrapped.hex(), "digest": digest}
    assert_absent_from_every_row(gone)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # as `retention replay-erasures` folds the log
        written = b"".join(read_if_present(path) for path in sqlite_files())
        assert_absent(written, "the SQLite database, its -wal or -shm file", values)
        for name, value in (("email ciphertext", bytes(sealed[0])), ("wrapped key", wrapped)):
            assert value not in written, f"the {name} is still in the database's bytes"


def test_the_account_pages_work_without_javascript(live_server, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/en/account/sign-up/")
        page.fill("[name=email]", "nojs@example.com")
        page.fill("[name=date_of_birth]", "1991-08-09")
        page.fill("[name=password]", "short")
        page.fill("[name=captcha_1]", "PASSED")
        page.check("[name=accept]")
        page.locator("form.form button[type=submit]").click()
        expect(page.locator("[data-strength-output]")).to_contain_text("Strength of the password you sent: Weak")
        expect(page.locator(".field-error")).to_contain_text("at least 15 characters")
        screenshot(page, str(Path(SHOTS) / "account-sign-up-error-en.png"))
    finally:
        context.close()


def test_the_account_page_with_an_authenticator_reads_on_a_phone(live_server, page: Page, smtp, settings) -> None:
    """The holder's page once an authenticator app is set up: its removal form (a password field
    and a button beside a label) stays within a 390 px screen, in Chinese."""
    settings.PIWARDEN_SITE_URL = live_server.url
    words = WORDS["zh"]
    page.set_viewport_size({"width": 390, "height": 844})
    open_account(page, live_server.url, smtp, words)
    page.goto(f"{live_server.url}/account/authenticator/")
    expect(page.locator("[data-totp-secret]")).not_to_be_empty()
    page.fill("[name=code]", code_for(AccountAuthenticator.objects.get().secret or ""))
    page.locator("form.form button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("身份验证器已启用")  # answered before the next page is asked for
    page.goto(f"{live_server.url}/account/")
    expect(page.locator("#id_remove_password")).to_be_visible()
    shoot(page, "account-authenticator-zh", 390)
    button, field = (
        page.get_by_role("button", name="移除身份验证器").bounding_box(),
        page.locator("#id_remove_password").bounding_box(),
    )
    assert button is not None
    assert field is not None
    assert button["height"] <= field["height"] + 2  # the button's words on one line (squeezed, one per line)
    assert field["width"] >= 200  # a field to type a password in, not a sliver beside its label
    page.set_viewport_size({"width": 1280, "height": 900})
    shoot(page, "account-authenticator-zh", 1280)
