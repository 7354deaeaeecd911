"""A visitor account opened in Chromium as a person opens it: sign up, the link from the
confirmation e-mail a real SMTP server received (``tests.smtp``), sign in; for the browser tests
of the account and of what it records."""

from __future__ import annotations

import re
import uuid

from django.core.management import call_command
from playwright.sync_api import Page, expect

from tests.accounts.helpers import PASSWORD
from tests.smtp import SMTPServer

# The words each language's pages use, for what the test clicks and reads.
WORDS = {
    "zh": {
        "prefix": "",
        "locale": "zh-CN",
        "confirm": "确认我的电子邮箱",
        "confirmed": "电子邮箱已确认",
        "sign_in": "登录",
        "accept_all": "全部接受",
        "reject_all": "全部拒绝",
        "save": "保存我的选择",
        "title": "零信任白皮书",
    },
    "en": {
        "prefix": "/en",
        "locale": "en-GB",
        "confirm": "Confirm my e-mail address",
        "confirmed": "E-mail address confirmed",
        "sign_in": "Sign in",
        "accept_all": "Accept all",
        "reject_all": "Reject all",
        "save": "Save my choice",
        "title": "Zero Trust White Paper",
    },
}


def link_from(smtp: SMTPServer, address: str, path: str) -> str:
    (message,) = [m for m in smtp.collector.to(address) if path in m.body][-1:]
    return next(url for url in re.findall(r"https?://\S+", message.body) if path in url)


def open_account(page: Page, base: str, smtp: SMTPServer, words: dict[str, str]) -> str:
    """Sign up, confirm with the e-mailed link, sign in; the account page is shown.  Returns the address."""
    email = f"history-{uuid.uuid4().hex[:12]}@example.com"
    page.goto(f"{base}/account/sign-up/")
    page.fill("[name=email]", email)
    page.fill("[name=date_of_birth]", "1990-04-12")
    page.fill("[name=password]", PASSWORD)
    page.fill("[name=captcha_1]", "PASSED")  # CAPTCHA test mode
    page.check("[name=accept]")
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url("**/account/sign-up/sent/")
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)  # sends the confirmation
    page.goto(link_from(smtp, email, "/account/verify/"))
    page.get_by_role("button", name=words["confirm"]).click()
    expect(page.locator("h1")).to_have_text(words["confirmed"])
    page.goto(f"{base}/account/sign-in/")
    page.fill("[name=email]", email)
    page.fill("[name=password]", PASSWORD)
    page.locator("form.form").get_by_role("button", name=words["sign_in"]).click()
    page.wait_for_url(f"{base}/account/")
    expect(page.locator("[data-account-email]")).to_have_text(email)
    return email
