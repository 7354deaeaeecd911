"""The rate-limit counters (``piwarden.ratelimit.limiter``)."""

from __future__ import annotations

from django.db import models

from piwarden.vault.fields import BlindIndexField


class RateCounter(models.Model):
    """How many requests one client made in one fixed window, for one scope.

    ``bucket`` is never the client's address: it is a blind index (keyed HMAC, ``vault.blind``) of
    ``scope|address``.  An IP address is personal information (PIPL Art 4: it relates to an
    identifiable person), and the counter only needs to tell two clients apart, so a keyed digest
    does the job without keeping the address; without the PRF key, which never enters the database,
    the digests cannot be tested against guessed addresses.

    The primary key is ``(window_start, bucket)``: it is the unique key the upsert conflicts on, and
    because it leads with ``window_start`` the same index serves the range ``DELETE`` of old windows.
    """

    pk = models.CompositePrimaryKey("window_start", "bucket")
    window_start = models.BigIntegerField(
        help_text="Unix seconds at which the window began (a multiple of its length)."
    )
    bucket = BlindIndexField(null=False, blank=False, help_text="Blind index of 'scope|client address'.")
    count = models.IntegerField(help_text="Requests counted in this window.")

    def __str__(self) -> str:
        return f"RateCounter {self.bucket[:8]}… @{self.window_start}: {self.count}"
