"""The privacy officer's page of the promises traced (/backoffice/promises/); any other role gets the
audited 404; the page in both languages, and in Chromium at desktop and phone widths."""

from __future__ import annotations

import re
import shutil
from http import HTTPStatus
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import Browser, expect

from piwarden.audit.models import AuditEvent
from tests.backoffice.test_console_browser import shoot
from tests.browser.test_browser import staff_sign_in
from tests.conftest import make_staff, sign_in
from tests.policy.test_trace import LINKS, run_suite
from tests.screenshots import screenshot

PAGE = "/backoffice/promises/"


@pytest.fixture(scope="module")
def last_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a real pytest run of a small suite (tests/policy/test_trace.py: P-61's test passes)."""
    return run_suite(tmp_path_factory.mktemp("suite"))


@pytest.fixture
def report(settings, last_run: Path, tmp_path: Path) -> Path:
    """That run's report in force, with the small suite's map (tests/policy/test_trace.py LINKS)."""
    policy = tmp_path / "policy"
    shutil.copytree(Path(settings.POLICY_DIR) / "texts", policy / "texts")
    shutil.copy(Path(settings.POLICY_DIR) / "declaration.toml", policy / "declaration.toml")
    entries = [
        f"[[promises]]\nid = {promise!r}\ncode = {list(named.code)!r}\ntests = {list(named.tests)!r}\n"
        for promise, named in LINKS.items()
    ]
    (policy / "promises.toml").write_text("\n".join(entries).replace("'", '"'), encoding="utf-8")
    settings.POLICY_DIR = policy
    settings.PIWARDEN_DUTY_REPORT = last_run
    return last_run


def signed_in(user, language: str = "zh-CN") -> Client:
    client = Client(headers={"Accept-Language": language})
    assert sign_in(client, user).status_code == HTTPStatus.FOUND
    return client


def rows(html: str) -> dict[str, str]:
    """Promise id → its row's status, as the page shows it."""
    return dict(re.findall(r'<tr id="(P-\d{2,3})" data-status="(\w+)">', html))


@pytest.mark.django_db
def test_the_privacy_officer_reads_the_trace_in_chinese_with_the_last_runs_results(carol, report):
    response = signed_in(carol).get(PAGE)
    assert response.status_code == HTTPStatus.OK
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "隐私政策的承诺" in html
    assert f'href="{PAGE}"' in html  # the console's menu offers the page
    shown = rows(html)
    assert len(shown) >= 70
    assert shown["P-61"] == "kept"  # 15 working days: its test passed in that run
    assert shown["P-44"] == "unkept"  # access reviews: nothing keeps it yet
    row = html.split('<tr id="P-61"')[1].split("</tr>")[0]
    assert "个工作日内答复" in row
    assert "RGT-09" in row
    assert "piwarden.rights.clock.due_date" in row
    assert "test_suite.py::test_due_date[1]</code>: 通过" in row
    unkept = html.split('id="unkept"')[1].split("</ul>")[0]
    assert 'href="#P-44"' in unkept
    assert 'href="#P-61"' not in unkept
    assert "退出状态 1" in html


@pytest.mark.django_db
def test_the_page_speaks_english_to_an_english_speaking_officer(carol, report):
    html = signed_in(carol, "en-GB,en;q=0.9").get(PAGE).content.decode()
    assert re.search(r"<h1>The privacy policy(&#x27;|')s promises</h1>", html)
    assert "We will respond within 15 working days" in html
    assert "隐私" not in html.split("<main")[1]
    assert "Unkept promises" in html


@pytest.mark.django_db
def test_without_a_report_the_page_says_how_to_get_one_and_keeps_nothing(carol, settings, tmp_path):
    settings.PIWARDEN_DUTY_REPORT = tmp_path / "none.json"
    html = signed_in(carol).get(PAGE).content.decode()
    assert "尚无测试报告" in html
    assert set(rows(html).values()) == {"unkept"}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["sales", "auditor", "admin"])
def test_every_other_role_gets_the_audited_404_and_no_menu_entry(role, report, tmp_path):
    user = make_staff(f"someone-{role}", role, tmp_path)
    client = signed_in(user)
    assert f'href="{PAGE}"' not in client.get("/backoffice/preferences/").content.decode()
    assert client.get(PAGE).status_code == HTTPStatus.NOT_FOUND
    refused = AuditEvent.objects.filter(event_type="staff.access_refused").last()
    assert refused is not None
    assert refused.actor == user
    assert refused.extra == {"page": "promises", "refusal": "the role may not read the promise trace"}


@pytest.mark.django_db
def test_a_visitor_is_sent_to_sign_in(report):
    response = Client().get(PAGE)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/backoffice/login/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1280, 390])
def test_the_page_reads_at_every_width(live_server, browser: Browser, report, tmp_path: Path, width):
    carol = make_staff("carol", "privacy_officer", tmp_path)
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        staff_sign_in(page, live_server.url, carol)
        page.goto(f"{live_server.url}{PAGE}")
        expect(page.locator("#promises tbody tr")).to_have_count(len(rows(page.content())))
        expect(page.locator("#P-61 .badge-ok")).to_be_visible()
        shoot(page, "bo-promises", width)
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/privacy/", "/en/privacy/"])
def test_the_marks_leave_the_privacy_page_identical_to_the_eye(live_server, browser: Browser, path):
    """The page as served, and the same page with every mark taken out (spans unwrapped, attributes
    removed): the two pictures are the same, pixel for pixel."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}{path}")
        assert page.locator("[data-promise]").count() >= 70
        marked = screenshot(page)
        page.evaluate(
            """() => {
              for (const el of [...document.querySelectorAll('[data-promise]')]) {
                el.removeAttribute('data-promise'); el.removeAttribute('data-duty');
                if (el.tagName === 'SPAN') el.replaceWith(...el.childNodes);
              }
            }"""
        )
        assert page.locator("[data-promise], [data-duty]").count() == 0
        assert screenshot(page) == marked
    finally:
        context.close()


@pytest.mark.django_db
def test_a_report_that_cannot_be_read_is_said_and_keeps_nothing(carol, settings, tmp_path):
    settings.PIWARDEN_DUTY_REPORT = tmp_path / "report.json"
    settings.PIWARDEN_DUTY_REPORT.write_text("{not json", encoding="utf-8")
    response = signed_in(carol).get(PAGE)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "无法读取测试报告" in html
    assert "not a duty report" in html
    assert set(rows(html).values()) == {"unkept"}
