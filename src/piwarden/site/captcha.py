"""The CAPTCHA picture, drawn here instead of by django-simple-captcha's ``captcha_image`` view.

The library's view cost 2.5 ms of CPU per picture on a quiet machine (4 ms under load) against a
2 ms budget for the whole request, and none of its settings brings it there: for each letter it
renders the letter with FreeType, makes two full-size images and composites the whole picture;
it works in RGB and encodes at zlib's default level; and it looks the challenge up through the
ORM.  This view keeps the library's model, challenges, URL
(``captcha/image/<key>/``), form field and widget, and draws the same kind of picture:

* each letter is rendered once per process (font, size, letter; ``_glyph``) on a canvas large
  enough to turn it, and turned by a whole number of degrees in the library's range (bicubic, as
  the library does) once per angle (``_turned``: at most 26 x 70 small images, ~2 MB a process);
  per picture each letter gets its own random angle and height and is stamped into the picture
  through itself as the mask.  The first pictures of a process render and turn letters; after
  a few hundred, drawing is only stamping, noise and encoding;
* one grey-level image throughout (the letters and the noise share one ink);
* the library's arc and two lines, then specks on ``SPECK_SHARE`` of the pixels, chosen by
  comparing random bytes with a threshold (one C call, no Python loop), then a light smoothing;
* PNG at zlib level 1 (about 4 KB; level 6 costs the encoder three times the CPU for 8 % fewer bytes);
* the challenge read with one raw ``SELECT`` (unknown or expired key: 404).

The randomness (angles, heights, specks) is seeded with an HMAC of the key under the site's
secret key: the same key draws the same picture (a reload shows nothing new to average over),
and knowing the key, which the form page shows, does not tell the noise.  The library seeds the
process-wide ``random`` with the bare key; this uses a ``random.Random`` of its own.
"""

from __future__ import annotations

import functools
import io
import math
import random

from captcha.conf import settings as captcha_settings
from captcha.models import CaptchaStore
from django.db import connections, router
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.views.decorators.http import require_safe
from PIL import Image, ImageColor, ImageDraw, ImageFilter, ImageFont

SPECK_SHARE = 0.04  # specks per pixel: enough to break a clean outline, few enough to read past
LETTER_GAP = 2  # pixels between letters (less, down to overlapping, when wide letters need it)
JITTER = 3  # a letter sits up to this many pixels above or below the middle line
PNG_LEVEL = 1  # zlib level: 1 costs a third of the default 6 for ~8 % more bytes
SEED_SALT = "piwarden.site.captcha.picture"


def _grey(colour: str) -> int:
    return int(ImageColor.getcolor(colour, "L"))  # type: ignore[arg-type]  # an int for mode "L"


@functools.cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=256)  # letters, fonts and sizes; a letter image is about 1 KB
def _glyph(letter: str, path: str, size: int) -> Image.Image:
    """``letter`` white on black, centred on a square canvas it can turn in without losing a corner."""
    font = _font(path, size)
    left, top, right, bottom = font.getbbox(letter)
    width, height = right - left, bottom - top
    side = math.ceil(math.hypot(width, height)) + 2
    canvas = Image.new("L", (side, side), 0)
    ImageDraw.Draw(canvas).text(((side - width) // 2 - left, (side - height) // 2 - top), letter, font=font, fill=255)
    return canvas


@functools.lru_cache(maxsize=4096)  # 26 letters, 70 angles (the library's ±35°) fill 1 820, ~2 MB
def _turned(letter: str, path: str, size: int, angle: int) -> Image.Image:
    """``letter`` turned by ``angle`` degrees (bicubic, as the library), cropped to its ink."""
    turned = _glyph(letter, path, size).rotate(angle, resample=Image.Resampling.BICUBIC)
    return turned.crop(turned.getbbox() or (0, 0, 1, 1))


def draw_picture(challenge: str, seed: bytes) -> bytes:
    """The PNG picture of ``challenge``; the same seed draws the same picture."""
    rng = random.Random(seed)  # noqa: S311  # noise, not a secret: seeded from an HMAC of the key
    width, height = captcha_settings.CAPTCHA_IMAGE_SIZE
    ink = _grey(captcha_settings.CAPTCHA_FOREGROUND_COLOR)
    path, size = captcha_settings.CAPTCHA_FONT_PATH, captcha_settings.CAPTCHA_FONT_SIZE
    low, high = captcha_settings.CAPTCHA_LETTER_ROTATION or (0, 1)

    letters = [_turned(letter, path, size, rng.randrange(low, high)) for letter in challenge]
    inked = sum(letter.width for letter in letters)
    gap = min(LETTER_GAP, (width - inked) // (len(letters) + 1))  # negative: wide letters overlap
    x = max(0, (width - inked - gap * (len(letters) - 1)) // 2)

    picture = Image.new("L", (width, height), _grey(captcha_settings.CAPTCHA_BACKGROUND_COLOR))
    for letter in letters:
        room = max(0, height - letter.height)
        y = min(room, max(0, room // 2 + rng.randint(-JITTER, JITTER)))
        picture.paste(ink, (x, y, x + letter.width, y + letter.height), letter)
        x += letter.width + gap

    pen = ImageDraw.Draw(picture)  # the library's noise_arcs, in the same ink
    pen.arc([-20, -20, width, 20], 0, 295, fill=ink)
    pen.line([-20, 20, width + 20, height - 20], fill=ink)
    pen.line([-20, 0, width + 20, height], fill=ink)
    specks = Image.frombytes("L", (width, height), rng.randbytes(width * height).translate(_SPECK_MASK))
    picture.paste(ink, (0, 0, width, height), specks)

    out = io.BytesIO()
    picture.filter(ImageFilter.SMOOTH).save(out, "PNG", compress_level=PNG_LEVEL)
    return out.getvalue()


# Random bytes → a speck (255) where a byte falls under the share, else nothing (0): one C call.
_SPECK_MASK = bytes(255 if byte < round(256 * SPECK_SHARE) else 0 for byte in range(256))


def _challenge(key: str) -> str | None:
    """The text of the unexpired challenge ``key``, with one statement."""
    connection = connections[router.db_for_read(CaptchaStore)]
    quote = connection.ops.quote_name
    meta = CaptchaStore._meta
    table = quote(meta.db_table)
    challenge, expiration, hashkey = (quote(meta.get_field(f).column) for f in ("challenge", "expiration", "hashkey"))
    sql = f"SELECT {challenge} FROM {table} WHERE {hashkey} = %s AND {expiration} > %s"  # noqa: S608  # names from the model
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, connection.ops.adapt_datetimefield_value(timezone.now())])
        row = cursor.fetchone()
    return None if row is None else str(row[0])


@require_safe
def picture(request: HttpRequest, key: str) -> HttpResponse:
    """``GET /captcha/image/<key>/``: the challenge's picture, or 404 for an unknown or expired key."""
    challenge = _challenge(key)
    if challenge is None:
        raise Http404
    png = draw_picture(challenge, salted_hmac(SEED_SALT, key, algorithm="sha256").digest())
    return HttpResponse(png, content_type="image/png")
