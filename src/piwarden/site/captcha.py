"""The CAPTCHA picture's noise, drawn in one call (django-simple-captcha's CAPTCHA_NOISE_FUNCTIONS).

The library's ``noise_dots`` draws a tenth of the picture's pixels one ``draw.point`` call and two
``randint`` calls each: 750 calls, half of the picture's 4 ms.  This draws fewer specks, all in one
call, from the same ``random`` module (the image view seeds it with the challenge's key, so a
picture reloads identically).
"""

from __future__ import annotations

import random
from typing import Any

SPECK_SHARE = 0.04  # specks per pixel: enough to break a clean outline, few enough to read past


def noise_specks(draw: Any, image: Any) -> Any:
    width, height = image.size
    uniform = random.random  # noise, not a secret; seeded per key by the image view
    count = int(width * height * SPECK_SHARE)
    draw.point([(int(uniform() * width), int(uniform() * height)) for _ in range(count)], fill=_ink())
    return draw


def _ink() -> str:
    from captcha.conf import settings as captcha_settings  # noqa: PLC0415  # reads Django settings at import

    return str(captcha_settings.CAPTCHA_FOREGROUND_COLOR)


def smooth_grey(image: Any) -> Any:
    """Grey levels, then the library's smoothing: a third of the bytes for the PNG encoder to compress.

    The letters and the noise share one dark ink on white, so the picture loses nothing a reader needs.
    """
    from PIL import ImageFilter  # noqa: PLC0415  # Pillow is the captcha library's own dependency

    return image.convert("L").filter(ImageFilter.SMOOTH)
