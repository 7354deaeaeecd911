"""The public downloads: the list in both languages, the file and its headers, nothing else reachable."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from urllib.parse import quote

import pytest
from django.test import Client

from piwarden.downloads import files
from piwarden.downloads.actions import withdraw_resource
from piwarden.downloads.models import Resource
from tests.downloads.conftest import PDF, docx_bytes, publish

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "title", "heading"),
    [("/downloads/", "零信任白皮书", "资料下载"), ("/en/downloads/", "Zero Trust White Paper", "Downloads")],
)
def test_the_list_shows_each_published_resource_in_the_pages_language(
    client: Client, resource: Resource, url, title, heading
):
    page = client.get(url).content.decode()
    assert heading in page
    assert title in page
    assert f'href="{url}{resource.pk}/"' in page
    assert "PDF" in page


def test_a_withdrawn_resource_is_neither_listed_nor_served(
    client: Client, resource: Resource, admin, django_capture_on_commit_callbacks
):
    path = files.path_of(resource.stored_name)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        withdraw_resource(resource, by=admin)
    assert resource.title_zh not in client.get("/downloads/").content.decode()
    assert client.get(f"/downloads/{resource.pk}/").status_code == HTTPStatus.NOT_FOUND
    assert not path.exists()  # the file is deleted once the withdrawal commits


@pytest.mark.duty("SEC-01")
def test_the_file_is_served_as_an_attachment_with_safe_headers(client: Client, resource: Resource):
    response = client.get(f"/en/downloads/{resource.pk}/")
    assert response.status_code == HTTPStatus.OK
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Length"] == str(len(PDF))
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert "filename*=UTF-8''" + quote("零信任白皮书 2026.pdf", safe="") in disposition
    assert 'filename="______ 2026.pdf"' in disposition  # the ASCII fallback
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox;")
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert not response.cookies


def test_the_content_type_is_the_recognised_types_not_the_uploaders(client: Client, admin):
    resource = publish(admin, filename="datasheet.docx", content=docx_bytes())
    response = client.get(f"/downloads/{resource.pk}/")
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert "filename=\"datasheet.docx\"; filename*=UTF-8''datasheet.docx" in response["Content-Disposition"]


@pytest.mark.duty("SEC-01")
@pytest.mark.parametrize(
    "path",
    [
        "/downloads/../../keys/",
        "/downloads/%2e%2e/%2e%2e/secret_key",
        "/downloads/..%2f..%2fsecret_key/",
        "/downloads/00000000-0000-0000-0000-000000000000/",
        "/downloads/not-a-uuid/",
        "/static/../downloads/",
    ],
)
def test_no_path_reaches_a_file_but_a_published_resources_own(client: Client, resource: Resource, settings, path):
    (settings.DATA_DIR / "secret_key").parent.mkdir(parents=True, exist_ok=True)
    response = client.get(path)
    assert response.status_code in {HTTPStatus.NOT_FOUND, HTTPStatus.OK}
    if response.status_code == HTTPStatus.OK:  # normalised to a page of the site, never a file
        assert response["Content-Type"].startswith("text/html")
        assert "Content-Disposition" not in response


def test_the_files_are_not_under_the_static_root_and_are_owner_only(resource: Resource, settings):
    path = files.path_of(resource.stored_name)
    assert settings.STATIC_ROOT not in path.parents
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.name == resource.stored_name
    assert resource.filename not in str(path)


@pytest.mark.parametrize("name", ["../secret_key", "/etc/passwd", "0" * 31, "A" * 32, "..", ""])
def test_a_stored_name_that_is_not_ours_builds_no_path(name):
    with pytest.raises(files.NotStored):
        files.path_of(name)


def test_a_download_answers_only_get_and_head(client: Client, resource: Resource):
    assert client.post(f"/downloads/{resource.pk}/").status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert client.head(f"/downloads/{resource.pk}/").status_code == HTTPStatus.OK
    assert client.get(f"/downloads/{uuid.uuid4()}/").status_code == HTTPStatus.NOT_FOUND
