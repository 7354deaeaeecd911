"""The guardian's link in Chromium (JavaScript off): read from a real SMTP server's mail, answered on the page."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, expect

from piwarden.children.actions import request_guardian_consent
from piwarden.children.models import GuardianRequest, GuardianRequestStatus
from piwarden.consent.models import ConsentKind, ConsentRecord
from piwarden.people.actions import find_or_create_person
from piwarden.people.models import Person
from piwarden.vault.blind import email_index
from tests.screenshots import screenshot
from tests.smtp import SMTPServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def created(sealed: dict[str, str]) -> Person:
    """The guardian's consent's hook: the child's data made from the sealed sign-up."""
    return find_or_create_person(email=sealed["email"])


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)


@pytest.mark.duty("CHD-01")
@pytest.mark.duty("CHD-02")
@pytest.mark.parametrize(
    ("language", "answer", "done"),
    [("zh-hans", "我同意", "您的同意已记录"), ("en", "I refuse", "Your refusal is recorded")],
    ids=["zh-hans-consents", "en-refuses"],
)
def test_the_guardian_follows_the_mailed_link_and_answers(  # noqa: PLR0917  # fixtures and parameters
    live_server, browser: Browser, smtp: SMTPServer, tmp_path: Path, language: str, answer: str, done: str
) -> None:
    guardian = f"guardian.browser.{language}@example.com"
    child = f"child.browser.{language}@example.com"
    request_guardian_consent({"email": child}, guardian, language, on_consent=created)
    run_worker()
    [message] = smtp.collector.to(guardian)
    link = re.search(r"https?://\S+/guardian/\S+/", message.body)
    assert link, message.body
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server.url + urlsplit(link.group(0)).path)
    expect(page.locator("h1")).to_have_text(
        "监护人同意" if language == "zh-hans" else "A guardian's consent for a child"
    )
    if language == "zh-hans":
        # Consent without the tick: refused on the page, nothing recorded; then ticked.
        page.get_by_role("button", name=answer).click()
        expect(page.locator(".field-error")).to_contain_text("单独同意")
        assert not ConsentRecord.objects.exists()
        assert not Person.objects.exists()  # nothing of the child before the guardian consents
        page.locator("input[name=separate_consent]").check()
    screenshot(page, str(tmp_path / f"guardian-{language}.png"))
    page.get_by_role("button", name=answer).click()
    expect(page.locator("h1")).to_have_text(done)
    if language == "zh-hans":
        person = Person.objects.get(email_index=email_index(child))
        assert GuardianRequest.objects.get(person=person).status == GuardianRequestStatus.CONSENTED
        assert ConsentRecord.objects.get(person=person).kind == ConsentKind.SEPARATE
    else:
        assert not GuardianRequest.objects.exists()  # destroyed with its key
        assert not Person.objects.exists()
    # The link works once.
    page.goto(live_server.url + urlsplit(link.group(0)).path)
    expect(page.locator("h1")).to_have_text("该链接已失效" if language == "zh-hans" else "This link no longer works")
    context.close()
