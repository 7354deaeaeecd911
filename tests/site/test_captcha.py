"""The CAPTCHA picture (piwarden.site.captcha): served by our view at the library's URL.

* A stored challenge's picture is a PNG of the configured size, with letters in it, read with one
  statement; the same key draws the same picture, another key another one.
* An unknown or expired key answers 404; the library's 2x picture is off.
* Drawing leaves the process-wide ``random`` alone (the library seeds it with the key).
"""

from __future__ import annotations

import datetime
import io
import random
from http import HTTPStatus

import pytest
from captcha.conf import settings as captcha_settings
from captcha.models import CaptchaStore
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from piwarden.site.captcha import draw_picture

pytestmark = pytest.mark.django_db


def stored(challenge: str = "K7QHM", minutes: int = 10) -> str:
    store = CaptchaStore.objects.create(
        challenge=challenge,
        response=challenge.lower(),
        expiration=timezone.now() + datetime.timedelta(minutes=minutes),
    )
    return str(store.hashkey)


def picture_url(key: str) -> str:
    return f"/captcha/image/{key}/"


def test_the_widget_links_to_this_view(client) -> None:
    key = stored()
    assert reverse("captcha-image", kwargs={"key": key}) == picture_url(key)
    page = client.get("/consultation/").content.decode()
    assert '<img src="/captcha/image/' in page


def test_a_stored_challenge_is_a_png_of_the_configured_size(client, django_assert_num_queries) -> None:
    key = stored()
    with django_assert_num_queries(1):
        answer = client.get(picture_url(key))
    assert answer.status_code == HTTPStatus.OK
    assert answer["Content-Type"] == "image/png"
    assert answer.content.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(answer.content))
    image.verify()  # a whole, valid PNG
    image = Image.open(io.BytesIO(answer.content))
    assert image.format == "PNG"
    assert image.size == tuple(captcha_settings.CAPTCHA_IMAGE_SIZE)
    darkest, lightest = image.convert("L").getextrema()
    assert darkest < 64  # ink
    assert lightest > 192  # on a light ground


def test_a_reload_draws_the_same_picture_and_another_key_another(client) -> None:
    first, second = stored(), stored()
    picture = client.get(picture_url(first)).content
    assert client.get(picture_url(first)).content == picture
    assert client.get(picture_url(second)).content != picture


def test_the_letters_are_in_the_picture() -> None:
    """Different challenges under the same noise differ where the letters are, the middle band."""
    one = Image.open(io.BytesIO(draw_picture("AAAAA", b"seed"))).convert("L")
    other = Image.open(io.BytesIO(draw_picture("WWWWW", b"seed"))).convert("L")
    width, height = one.size
    band = (0, height // 4, width, height * 3 // 4)
    assert one.crop(band).tobytes() != other.crop(band).tobytes()


@pytest.mark.parametrize("challenge", ["WWWWW", "MMMMM", "IIIII"])
def test_wide_and_narrow_challenges_fit_in_the_picture(challenge) -> None:
    image = Image.open(io.BytesIO(draw_picture(challenge, b"seed")))
    assert image.size == tuple(captcha_settings.CAPTCHA_IMAGE_SIZE)


def test_an_unknown_key_is_404(client) -> None:
    assert client.get(picture_url("0" * 40)).status_code == HTTPStatus.NOT_FOUND


def test_an_expired_challenge_is_404(client) -> None:
    key = stored(minutes=-1)
    assert client.get(picture_url(key)).status_code == HTTPStatus.NOT_FOUND


def test_the_libraries_2x_picture_is_off(client) -> None:
    key = stored()
    assert client.get(f"/captcha/image/{key}@2/").status_code == HTTPStatus.NOT_FOUND


def test_drawing_leaves_the_process_random_alone(client) -> None:
    key = stored()
    random.seed(12345)
    expected = random.random()
    random.seed(12345)
    client.get(picture_url(key))
    assert random.random() == expected
