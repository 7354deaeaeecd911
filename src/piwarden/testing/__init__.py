"""Test support shipped with the package (loaded by pytest with ``-p piwarden.testing``).

Sets the environment *before* pytest-django imports the settings: a private
data directory per run (keys, SQLite test database, outbox), the CAPTCHA's
test mode, and a rate limit loose enough for the suite (the rate-limit test
tightens it itself).
"""

from __future__ import annotations

import os
import tempfile

if "PIWARDEN_DATA_DIR" not in os.environ or os.environ.get("PIWARDEN_TEST_RUN") != "1":
    os.environ["PIWARDEN_DATA_DIR"] = tempfile.mkdtemp(prefix="piwarden-test-")
os.environ["PIWARDEN_TEST_RUN"] = "1"  # xdist workers inherit the controller's directory
os.environ.setdefault("PIWARDEN_CAPTCHA_TEST_MODE", "on")
os.environ.setdefault("PIWARDEN_CONSULTATION_RATE", "10000/m")
os.environ.setdefault("PIWARDEN_HTTPS", "off")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
