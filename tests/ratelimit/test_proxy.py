"""Forwarded headers are believed only behind a proxy the operator declared, and then the rate
limit counts each visitor by the address the outermost trusted proxy saw, not the proxy's own
(which would put every visitor in one bucket: one attacker could block the form for everyone)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from http import HTTPStatus

import pytest
from django.test import RequestFactory

from piwarden.ratelimit import limiter
from tests.conftest import consultation_data

PROXY = "127.0.0.1"


def post_from(client, visitor: str, *, spoofed: str = "203.0.113.250"):
    # What a proxy that appends sends: whatever the visitor wrote, then the address it saw.
    return client.post(
        "/consultation/", consultation_data(), REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{spoofed}, {visitor}"
    )


@pytest.mark.django_db
def test_behind_a_proxy_the_rate_limit_counts_each_visitor_not_the_proxy(client, settings):
    settings.PIWARDEN_CONSULTATION_RATE = "2/m"
    settings.PIWARDEN_TRUSTED_PROXIES = 1
    if 60 - time.time() % 60 < 10:  # do not straddle a window boundary
        time.sleep(11)
    # The attacker changes the part of X-Forwarded-For they write themselves: still one bucket.
    for spoofed in ("192.0.2.1", "192.0.2.2"):
        assert post_from(client, "198.51.100.7", spoofed=spoofed).status_code == HTTPStatus.FOUND
    assert post_from(client, "198.51.100.7", spoofed="192.0.2.3").status_code == HTTPStatus.TOO_MANY_REQUESTS
    # Another visitor behind the same proxy is not blocked by them.
    assert post_from(client, "203.0.113.9").status_code == HTTPStatus.FOUND


@pytest.mark.parametrize(
    ("proxies", "forwarded", "counted"),
    [
        (0, "198.51.100.7", "192.0.2.10"),  # no declared proxy: the header is the client's own words
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "10.9.9.9, 198.51.100.7", "198.51.100.7"),
        (2, "10.9.9.9, 198.51.100.7, 192.0.2.20", "198.51.100.7"),
        (2, "198.51.100.7", "198.51.100.7"),  # fewer entries than proxies: all were appended by them
        (1, "", "192.0.2.10"),
    ],
)
def test_the_counted_address_is_the_one_the_outermost_trusted_proxy_appended(settings, proxies, forwarded, counted):
    settings.PIWARDEN_TRUSTED_PROXIES = proxies
    request = RequestFactory().post("/consultation/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR=forwarded)
    assert limiter.client_address(request) == counted


@pytest.mark.parametrize(("behind_proxy", "trusted"), [("off", ""), ("on", "127.0.0.1,::1")])
def test_gunicorn_believes_forwarded_headers_only_behind_a_declared_proxy(behind_proxy, trusted):
    env = {k: v for k, v in os.environ.items() if k not in {"FORWARDED_ALLOW_IPS"}}
    env["PIWARDEN_BEHIND_PROXY"] = behind_proxy
    shown = subprocess.run(  # our own module
        [sys.executable, "-c", "import piwarden.gunicorn_conf as c; print(c.forwarded_allow_ips)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == trusted
