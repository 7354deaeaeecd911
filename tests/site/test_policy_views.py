"""The policy's versions page, an old version's text, and the notice of a material change on every
page until the visitor closes it (the strictly necessary piwarden_notice cookie; for a signed-in
account holder, recorded for the account too)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client

from piwarden.accounts.models import Account
from piwarden.audit.models import AuditEvent, EventType
from piwarden.policy.declaration import load_declaration
from piwarden.policy.models import PolicyVersion
from piwarden.policy.notice import COOKIE_NAME
from tests.accounts.helpers import confirmed_account, signed_in
from tests.policy.test_changes import HOTLINE, LONGER_RETENTION
from tests.policy.test_declaration import edited
from tests.revisions.test_actions import NEXT, publish, redeclare

pytestmark = pytest.mark.django_db

PAGES = ["/", "/privacy/", "/contact/", "/consultation/", "/rights/", "/cookies/", "/privacy/versions/"]
NOTICE_ZH, NOTICE_EN = "我们的咨询热线改为 95016。", "Our hotline is now 95016."


def material_change(declared: Callable[[str], None], tmp_path: Path, *edits: tuple[str, str]) -> PolicyVersion:
    """Version 1 as it is, then version 2 with ``edits`` (the hotline by default), with its notices."""
    publish()
    declared(edited(*(edits or (HOTLINE,)), *NEXT))
    zh, en = tmp_path / "zh.txt", tmp_path / "en.txt"
    zh.write_text(NOTICE_ZH, encoding="utf-8")
    en.write_text(NOTICE_EN, encoding="utf-8")
    publish("--notice-zh", str(zh), "--notice-en", str(en))
    return PolicyVersion.objects.get(number=2)


def dismiss(client: Client, version: int, path: str = "/", **headers: str) -> object:
    return client.post(
        "/privacy/notice/dismiss/",
        {"version": str(version), "next": path},
        headers={"Sec-Fetch-Site": "same-origin", **headers},
    )


@pytest.mark.duty("CHG-02")
def test_the_versions_page_lists_every_version_with_what_changed_in_both_languages(
    client: Client, declared, tmp_path
) -> None:
    material_change(declared, tmp_path, HOTLINE, LONGER_RETENTION)
    en = client.get("/en/privacy/versions/").content.decode()
    assert en.index('id="v2"') < en.index('id="v1"')  # newest first
    assert "Effective 2099-01-01" in en
    assert "Effective 2026-11-25" in en
    assert load_declaration().digest in en
    assert NOTICE_EN in en
    assert "the responsible department, contact or complaint channel" in en  # kind (5)
    assert "the purposes, categories or use of personal information" in en  # kind (1)
    assert "<td>Hotline</td><td>95015</td><td>95016</td>" in en
    assert "How long “Consultation request details” is kept" in en
    assert "Consent given before this version to the following purposes no longer counts" in en
    assert "Answering your consultation request" in en
    # The texts: the paragraph naming the hotline, as it read and as it reads.
    assert "hotline: 95015" in en
    assert "hotline: 95016" in en
    assert "The first version kept on this site." in en
    zh = client.get("/privacy/versions/").content.decode()
    assert "“咨询请求信息”的保存期限" in zh
    assert NOTICE_ZH in zh
    assert "负责部门、联系方式或投诉渠道" in zh
    assert "<td>95015</td><td>95016</td>" in zh


@pytest.mark.duty("CHG-02")
def test_an_earlier_version_reads_as_it_was_published(client: Client, declared, tmp_path) -> None:
    material_change(declared, tmp_path)
    old = client.get("/en/privacy/versions/1/").content.decode()
    assert "Privacy policy, version 1.0" in old
    assert "hotline: 95015" in old
    assert "95016</a>" in old
    assert "hotline: 95016" in client.get("/en/privacy/versions/2/").content.decode()
    assert client.get("/privacy/versions/3/").status_code == 404


@pytest.mark.duty("CHG-01")
def test_a_material_change_is_announced_on_every_page_until_the_visitor_closes_it(
    client: Client, declared, tmp_path
) -> None:
    publish()
    assert 'class="policy-notice"' not in client.get("/").content.decode()  # version 1 changed nothing
    declared(edited(HOTLINE, *NEXT))
    zh, en = tmp_path / "zh.txt", tmp_path / "en.txt"
    zh.write_text(NOTICE_ZH, encoding="utf-8")
    en.write_text(NOTICE_EN, encoding="utf-8")
    publish("--notice-zh", str(zh), "--notice-en", str(en))
    for path in PAGES:
        page = client.get(path).content.decode()
        assert 'class="policy-notice"' in page, path
        assert NOTICE_ZH in page, path
        english = client.get(f"/en{path}").content.decode()
        assert NOTICE_EN in english, path
        assert "I have read this notice" in english, path
    response = dismiss(client, 2, "/contact/")
    assert response.status_code == 303
    assert response["Location"] == "/contact/"
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 365 * 24 * 3600
    for path in PAGES:
        assert 'class="policy-notice"' not in client.get(path).content.decode(), path
    # The cookie is declared (strictly necessary) in the cookie declaration.
    assert any(c.name == COOKIE_NAME and c.category == "essential" for c in load_declaration().cookies)
    # A later material version is announced again.
    redeclare(edited(HOTLINE, LONGER_RETENTION, ('version = "1.0"', 'version = "1.2"'), NEXT[1]))
    publish("--notice-zh", str(zh), "--notice-en", str(en))
    assert 'class="policy-notice"' in client.get("/").content.decode()


def test_a_forged_or_foreign_dismissal_changes_nothing(client: Client, declared, tmp_path) -> None:
    material_change(declared, tmp_path)
    client.cookies[COOKIE_NAME] = "2"  # not signed
    assert NOTICE_ZH in client.get("/").content.decode()
    response = dismiss(client, 2, **{"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 400
    assert COOKIE_NAME not in response.cookies
    assert "未能关闭此通知，未作任何更改" in response.content.decode()
    assert dismiss(client, 1).status_code == 400  # version 1 made no material change
    assert dismiss(client, 2, "https://evil.example/").status_code == 303  # an outside address is not followed
    assert dismiss(client, 2, "https://evil.example/")["Location"] == "/privacy/versions/"


NOTICE = 'class="policy-notice"'


@pytest.mark.duty("CHG-01")
def test_a_holder_who_closes_it_signed_in_does_not_see_it_again_on_another_device(declared, tmp_path, smtp) -> None:
    material_change(declared, tmp_path)
    holder = confirmed_account(smtp, "zhou.min@example.com")
    laptop, phone, stranger = Client(), Client(), Client()
    for device in (laptop, phone):
        assert signed_in(device, "zhou.min@example.com").status_code == 302
    assert NOTICE in phone.get("/").content.decode()
    assert dismiss(laptop, 2, "/contact/").status_code == 303
    # The phone never closed it and holds no cookie of it: the account's record keeps it closed there.
    assert COOKIE_NAME not in phone.cookies
    for path in PAGES:
        assert NOTICE not in phone.get(path).content.decode(), path
        assert NOTICE not in phone.get(f"/en{path}").content.decode(), path
    assert NOTICE in stranger.get("/").content.decode()  # nobody else's notice is closed
    holder.refresh_from_db()
    assert holder.notice_dismissed == 2
    [event] = AuditEvent.objects.filter(event_type=EventType.ACCOUNT_NOTICE_DISMISSED)
    assert (event.person_id, event.extra["version"]) == (holder.person_id, 2)
    # Signed out, the phone is a browser like any other: it shows the notice until closed there.
    phone.post("/en/account/sign-out/")
    assert NOTICE in phone.get("/").content.decode()
    assert signed_in(phone, "zhou.min@example.com").status_code == 302
    assert NOTICE not in phone.get("/").content.decode()
    # Closing it again records nothing more.
    assert dismiss(phone, 2).status_code == 303
    assert AuditEvent.objects.filter(event_type=EventType.ACCOUNT_NOTICE_DISMISSED).count() == 1
    assert Account.objects.get(pk=holder.pk).notice_dismissed == 2
