"""On the wire: pages gzip-compressed when the browser accepts it, static files hashed, compressed and cached."""

from __future__ import annotations

import gzip
import re
from http import HTTPStatus

import brotli
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

YEAR = 365 * 24 * 3600


def test_the_privacy_page_is_sent_gzip_compressed_when_the_browser_asks(client: Client) -> None:
    plain = client.get("/privacy/")
    packed = client.get("/privacy/", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    assert gzip.decompress(packed.content) == plain.content
    assert len(packed.content) < len(plain.content) / 2


def test_a_form_page_is_compressed_too(client: Client) -> None:
    packed = client.get("/consultation/", headers={"Accept-Encoding": "gzip"})
    assert packed.status_code == HTTPStatus.OK
    assert b'name="csrfmiddlewaretoken"' in gzip.decompress(packed.content)


def test_the_captcha_picture_is_not_compressed_again(client: Client) -> None:
    page = client.get("/consultation/").content.decode()
    picture = re.search(r'<img src="(/captcha/image/[^"]+)"', page)
    assert picture is not None
    answer = client.get(picture.group(1), headers={"Accept-Encoding": "gzip"})
    assert answer["Content-Type"] == "image/png"
    assert "Content-Encoding" not in answer


def stylesheet(client: Client) -> str:
    link = re.search(r'<link rel="stylesheet" href="([^"]+)"', client.get("/").content.decode())
    assert link is not None
    return link.group(1)


def test_static_files_have_hashed_names_and_a_year_in_the_cache(client: Client) -> None:
    url = stylesheet(client)
    assert re.fullmatch(r"/static/piwarden/site\.[0-9a-f]{12}\.css", url), url
    answer = client.get(url)
    assert answer.status_code == HTTPStatus.OK
    cache_control = answer["Cache-Control"]
    assert "immutable" in cache_control
    max_age = re.search(r"max-age=(\d+)", cache_control)
    assert max_age is not None
    assert int(max_age.group(1)) >= YEAR


@pytest.mark.parametrize(("accept", "encoding"), [("br, gzip", "br"), ("gzip", "gzip")])
def test_static_files_are_sent_compressed_ahead_of_time(client: Client, accept: str, encoding: str) -> None:
    url = stylesheet(client)
    plain = b"".join(client.get(url).streaming_content)  # type: ignore[attr-defined]  # WhiteNoise streams files
    packed = client.get(url, headers={"Accept-Encoding": accept})
    assert packed["Content-Encoding"] == encoding
    body = b"".join(packed.streaming_content)  # type: ignore[attr-defined]
    unpacked = brotli.decompress(body) if encoding == "br" else gzip.decompress(body)
    assert unpacked == plain
    assert len(body) < len(plain)
