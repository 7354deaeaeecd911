"""The downloads library in the console: publish, edit, withdraw — each audited, bad input changes nothing."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from piwarden.audit.models import AuditEvent
from piwarden.downloads.models import Resource
from tests.conftest import make_staff, sign_in
from tests.downloads.conftest import PDF, docx_bytes

pytestmark = pytest.mark.django_db

URL = "/backoffice/downloads/"
TEXT = {
    "title_zh": "数据安全产品手册",
    "title_en": "Data Security Datasheet",
    "description_zh": "产品功能与规格。",
    "description_en": "Features and specifications.",
}


def upload(client: Client, name: str, content: bytes, **overrides: str):
    return client.post(URL, {**TEXT, **overrides, "file": SimpleUploadedFile(name, content, "application/pdf")})


def stored_files(settings) -> list[Path]:
    folder = Path(settings.PIWARDEN_DOWNLOADS_DIR)
    return sorted(folder.iterdir()) if folder.exists() else []


def test_an_administrator_publishes_a_pdf_and_it_is_audited(admin_console: Client, admin, settings):
    response = upload(admin_console, "datasheet.pdf", PDF)
    assert response.status_code == HTTPStatus.FOUND
    resource = Resource.objects.get()
    assert (resource.kind, resource.size, resource.filename, resource.published_by) == (
        "pdf",
        len(PDF),
        "datasheet.pdf",
        admin,
    )
    assert [p.name for p in stored_files(settings)] == [resource.stored_name]
    event = AuditEvent.objects.get(event_type="downloads.published")
    assert event.actor_id == admin.pk
    assert event.extra["resource"] == str(resource.pk)
    assert event.extra["sha256"] == resource.sha256
    page = admin_console.get(URL + "?done=published").content.decode()
    assert "datasheet.pdf" in page


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("page.html", b"<html><script>alert(1)</script></html>", "not on the allow-list"),
        ("evil.pdf", b"<html><script>alert(1)</script></html>", "HTML named .pdf"),
        ("image.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>", "SVG can run script"),
        ("paper.png", PDF, "a PDF named .png"),
        ("broken.docx", b"PK\x03\x04not really a zip", "a zip signature without a zip"),
        ("sheet.xlsx", docx_bytes(), "a Word file named .xlsx"),
        ("", PDF, "no name"),
    ],
)
def test_a_file_whose_content_is_not_an_allowed_type_is_refused_and_nothing_is_stored(
    admin_console: Client, settings, name, content, why
):
    response = upload(admin_console, name or "x", content) if name else admin_console.post(URL, {**TEXT, "file": ""})
    assert response.status_code == HTTPStatus.BAD_REQUEST, why
    assert not Resource.objects.exists()
    assert stored_files(settings) == []
    assert not AuditEvent.objects.filter(event_type="downloads.published").exists()


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("zh-hans", "不允许上传此类型的文件，或文件内容与文件名不符"),
        ("en", "This file&#x27;s type is not allowed, or its content does not match its name"),
    ],
)
def test_a_wrong_type_is_explained_in_the_staff_members_language(admin, language, message):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    sign_in(client, admin)
    response = upload(client, "run.exe", b"MZ\x90\x00")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.content.decode()


@pytest.mark.parametrize(
    ("language", "message"),
    [("zh-hans", "超过了 10\xa0字节 的上限"), ("en", "the largest allowed is 10\xa0bytes")],
)
def test_a_file_over_the_size_limit_is_refused(admin, settings, language, message):
    settings.PIWARDEN_DOWNLOAD_MAX_BYTES = 10
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    sign_in(client, admin)
    response = upload(client, "big.pdf", PDF)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.content.decode()
    assert not Resource.objects.exists()
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("language", "field", "value", "message"),
    [
        ("zh-hans", "title_zh", "", "此项为必填项"),
        ("en", "title_en", "", "This field is required"),
        ("en", "title_en", "x" * 201, "Ensure this value has at most 200 characters"),
        ("zh-hans", "description_zh", "长" * 2001, "2000"),
    ],
)
def test_bad_text_is_refused_in_the_staff_members_language_and_changes_nothing(  # noqa: PLR0917  # parametrised
    admin, settings, language, field, value, message
):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    sign_in(client, admin)
    response = upload(client, "ok.pdf", PDF, **{field: value})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.content.decode()
    assert not Resource.objects.exists()
    assert stored_files(settings) == []


def test_a_path_in_the_uploaded_name_is_dropped(admin_console: Client):
    assert upload(admin_console, "../../etc/passwd.pdf", PDF).status_code == HTTPStatus.FOUND
    assert Resource.objects.get().filename == "passwd.pdf"


def test_editing_changes_the_texts_only_and_is_audited(admin_console: Client, resource: Resource):
    url = f"/backoffice/downloads/{resource.pk}/"
    assert admin_console.get(url).status_code == HTTPStatus.OK
    response = admin_console.post(url, {**TEXT, "title_en": "Zero Trust, 2nd edition", "action": "save"})
    assert response.status_code == HTTPStatus.FOUND
    resource.refresh_from_db()
    assert resource.title_en == "Zero Trust, 2nd edition"
    assert resource.title_zh == TEXT["title_zh"]
    event = AuditEvent.objects.get(event_type="downloads.edited")
    assert "title_en" in event.extra["changed"]
    bad = admin_console.post(url, {**TEXT, "title_zh": "", "action": "save"})
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    resource.refresh_from_db()
    assert resource.title_zh == TEXT["title_zh"]


def test_withdrawing_unlists_the_resource_and_is_audited(
    admin_console: Client, resource: Resource, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_console.post(f"/backoffice/downloads/{resource.pk}/", {"action": "withdraw"})
    assert response.status_code == HTTPStatus.FOUND
    resource.refresh_from_db()
    assert resource.is_withdrawn
    assert AuditEvent.objects.filter(event_type="downloads.withdrawn").count() == 1
    assert Client().get(f"/downloads/{resource.pk}/").status_code == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize("role", ["sales", "privacy_officer", "auditor"])
def test_other_roles_find_no_library_and_their_attempt_is_recorded(db, tmp_path, role, resource: Resource):
    user = make_staff(f"x-{role}", role, tmp_path)
    client = Client()
    sign_in(client, user)
    assert client.get(URL).status_code == HTTPStatus.NOT_FOUND
    assert upload(client, "a.pdf", PDF).status_code == HTTPStatus.NOT_FOUND
    assert (
        client.post(f"/backoffice/downloads/{resource.pk}/", {"action": "withdraw"}).status_code == HTTPStatus.NOT_FOUND
    )
    assert Resource.objects.count() == 1
    assert not Resource.objects.get().is_withdrawn
    assert AuditEvent.objects.filter(event_type="staff.access_refused", actor_id=user.pk).exists()
