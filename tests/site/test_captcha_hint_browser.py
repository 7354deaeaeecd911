"""The CAPTCHA's hint in Chromium, as a visitor meets it: zh-hans and English, desktop and phone widths.

The hint and its "cannot read it" note are one translated sentence (Chinese sentences follow one
another with no space), the picture's field names the hint for a screen reader (the fieldset's
``aria-describedby``), and the block fits the width.  The pictures are saved to look at
(``PIWARDEN_SHOTS_DIR``, outside the repository).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.screenshots import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("PIWARDEN_SHOTS_DIR", Path(tempfile.gettempdir()) / "pw-shots"))  # outside the repo
HINT = {
    "": "请输入图片中显示的字符。看不清？刷新页面即可换一张图片。",
    "/en": "Type the characters shown in the picture. Cannot read it? Reload the page for a new picture.",
}
FORMS = ("rights", "account/sign-up")  # the sign-in and the reset show it after failures


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("prefix", ["", "/en"])
def test_the_captcha_hint_is_one_sentence_named_by_its_field_and_fits_the_width(
    live_server, browser: Browser, prefix, width
):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        for path in FORMS:
            page.goto(f"{live_server.url}{prefix}/{path}/")
            captcha = page.locator("#captcha")
            captcha.scroll_into_view_if_needed()
            hint = captcha.locator("p.help")
            assert hint.inner_text() == HINT[prefix]
            described = captcha.get_attribute("aria-describedby")
            assert described
            assert page.locator(f"#{described}").inner_text() == HINT[prefix]
            for part in (captcha, captcha.locator(".captcha-row"), hint):
                box = part.bounding_box()
                assert box is not None
                assert box["x"] + box["width"] <= width
            assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
            name = f"captcha-{path.replace('/', '-')}-{prefix.strip('/') or 'zh-hans'}-{width}.png"
            captcha.screenshot(path=SHOTS / name)
            screenshot(page, SHOTS / f"page-{name}")
    finally:
        context.close()
