"""The status page of a completed access or copy request links to its archive (rights-rest):
while the download is valid, with the date it expires; once expired, saying so."""

from __future__ import annotations

import datetime
import re
import zoneinfo
from http import HTTPStatus

import pytest
from django.test import Client
from django.utils import timezone

from piwarden.rights.models import Archive, RequestKind, RightsRequest
from tests.rights.mailbox import deliver, last_code_to
from tests.rights.staffing import act, console, verified_request

pytestmark = pytest.mark.django_db

EMAIL = "zhang.wei@example.com"  # the consultation fixture's address: something to put in the archive
PREFIX = {"zh-hans": "", "en": "/en"}
BEIJING = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def exports(settings, tmp_path):
    settings.PIWARDEN_EXPORTS_DIR = tmp_path / "exports"


def opened(request: RightsRequest, language: str) -> Client:
    """A visitor who opened the request with a code, as the status page asks."""
    visitor = Client()
    visitor.post(f"{PREFIX[language]}/rights/status/", {"reference": request.reference, "email": EMAIL})
    code = last_code_to(EMAIL)
    response = visitor.post(f"{PREFIX[language]}/rights/status/code/", {"reference": request.reference, "code": code})
    assert response.status_code == HTTPStatus.FOUND
    return visitor


def status_page(visitor: Client, language: str) -> str:
    response = visitor.get(f"{PREFIX[language]}/rights/status/view/")
    assert response.status_code == HTTPStatus.OK
    return re.sub(r"\s+", " ", response.content.decode())


def beijing(when: datetime.datetime) -> str:
    return when.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


@pytest.mark.duty("RGT-02")
@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("zh-hans", ("打开下载页面", "可下载至", "北京时间", "正在准备", "下载已于", "有效期为 5 天")),
        ("en", ("Open the download page", "available until", "Beijing time", "being prepared", "expired on", "5 days")),
    ],
)
def test_the_status_page_links_the_archive_while_valid_and_says_when_it_expired(carol, submit, language, words):
    open_link, until, beijing_time, preparing, expired_on, lifetime = words
    assert submit().status_code == HTTPStatus.FOUND
    request = verified_request(EMAIL, kind=RequestKind.COPY, language=language)
    result = (
        "Your copy is ready: open it from your request's page."
        if language == "en"
        else "您的个人信息副本已准备好，请从请求页面下载。"
    )
    visitor = opened(request, language)  # before the completion: opening delivers what is queued
    assert act(console(carol), request.reference, "complete", result=result).status_code == HTTPStatus.FOUND
    # Completed, the archive queued but not built yet: being prepared, with a link to its progress.
    page = status_page(visitor, language)
    assert preparing in page
    assert f'href="{PREFIX[language]}/rights/status/archive/"' in page

    deliver()  # the completion e-mail and the archive's build, as the worker runs them
    archive = Archive.objects.get(reference=request.reference)
    page = status_page(visitor, language)
    assert open_link in page
    assert f'href="{PREFIX[language]}/rights/status/archive/"' in page
    assert until in page
    assert beijing(archive.expires_at) in page
    assert beijing_time in page
    # The page it links to offers the download.
    assert (
        "/rights/status/archive/download/" in visitor.get(f"{PREFIX[language]}/rights/status/archive/").content.decode()
    )

    # Expired, the row still there: no link, the date it expired.
    past = timezone.now() - datetime.timedelta(minutes=5)
    Archive.objects.filter(pk=archive.pk).update(expires_at=past)
    page = status_page(visitor, language)
    assert open_link not in page
    assert "/rights/status/archive/" not in page
    assert expired_on in page
    assert beijing(past) in page
    # Deleted by the retention sweep after its 5 days: still said, without the exact date.
    Archive.objects.filter(pk=archive.pk).delete()
    RightsRequest.objects.filter(pk=request.pk).update(completed_at=timezone.now() - datetime.timedelta(days=6))
    page = status_page(visitor, language)
    assert lifetime in page
    assert open_link not in page


def test_requests_without_an_archive_show_none(carol):
    request = verified_request(EMAIL, kind=RequestKind.EXPLANATION, language="en")
    assert act(console(carol), request.reference, "complete", result="Here is how we process it.").status_code == 302
    deliver()
    page = status_page(opened(request, "en"), "en")
    assert "archive-link" not in page
    assert "/rights/status/archive/" not in page
