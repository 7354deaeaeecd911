from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client

from piwarden.downloads import browsing
from piwarden.downloads.actions import ResourceText, publish_resource
from piwarden.downloads.kinds import recognise
from piwarden.downloads.models import Resource
from piwarden.people.actions import find_or_create_person
from piwarden.people.models import Person
from piwarden.site.pagecache import forget_pages
from tests.conftest import make_staff, sign_in

SAME_SITE = {"HTTP_SEC_FETCH_SITE": "same-origin"}
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def docx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _downloads_dir(settings: Any, tmp_path: Path) -> Iterator[None]:
    settings.PIWARDEN_DOWNLOADS_DIR = tmp_path / "downloads"
    settings.PIWARDEN_COOKIE_CHOICE_RATE = "1000000/m"
    browsing.take()
    forget_pages()
    yield
    browsing.take()
    forget_pages()


@pytest.fixture
def signed_in_middleware(settings: Any) -> None:
    """The accounts middleware's stand-in, just before the page-view recorder (as the lead will wire it)."""
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("piwarden.downloads.middleware.PageViewMiddleware"), "tests.downloads.visitor.SignedInAs"
    )
    settings.MIDDLEWARE = middleware


@pytest.fixture
def admin(db: None, tmp_path: Path) -> User:
    return make_staff("dora", "admin", tmp_path)


@pytest.fixture
def admin_console(admin: User) -> Client:
    client = Client()
    sign_in(client, admin)
    return client


def publish(
    by: User,
    *,
    title: str = "零信任白皮书",
    title_en: str = "Zero Trust White Paper",
    filename: str = "零信任白皮书 2026.pdf",
    content: bytes = PDF,
) -> Resource:
    upload = SimpleUploadedFile(filename, content)
    kind = recognise(upload, filename)
    assert kind is not None
    text = ResourceText(title, title_en, f"{title}：概述与实践。", f"{title_en}: an overview.")
    return publish_resource(text, upload, kind=kind, filename=filename, by=by)


@pytest.fixture
def resource(admin: User) -> Resource:
    return publish(admin)


@pytest.fixture
def person(db: None) -> Person:
    with transaction.atomic():
        return find_or_create_person(email="wang.fang@example.com")


@pytest.fixture
def visitor(signed_in_middleware: None, person: Person) -> Callable[..., Client]:
    """A browser of the signed-in ``person``, with a real cookie choice made on /cookies/."""

    def _make(action: str = "accept_all", *, gpc: bool = False, **choice: str) -> Client:
        headers = {"HTTP_X_TEST_PERSON": str(person.pk)}
        if gpc:
            headers["HTTP_SEC_GPC"] = "1"
        client = Client(**headers)
        if action:
            response = client.post("/cookies/", {"action": action, **choice}, **SAME_SITE)
            assert response.status_code == 303, response.content.decode()[:300]
        return client

    return _make
