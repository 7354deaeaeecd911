"""Screenshots of the browser tests, taken so that a person can look at the pages.

Chromium sometimes answers `Page.captureScreenshot` with "Unable to capture screenshot" when the
machine is loaded (the compositor has no frame ready yet); it is a transient refusal of the
browser, not a fault of the page, so the picture is asked for again after the next frame.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Error, Page

ATTEMPTS = 4


def screenshot(page: Page, path: Path | str | None = None, *, full_page: bool = True) -> bytes:
    """The page's picture (saved at `path` when given); asked again when Chromium has no frame."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return page.screenshot(path=path, full_page=full_page)
        except Error as error:
            if "Unable to capture screenshot" not in str(error) or attempt == ATTEMPTS:
                raise
            page.wait_for_timeout(250 * attempt)
    raise AssertionError("unreachable")
