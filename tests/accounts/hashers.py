"""Django's Argon2 hasher, counting its work: how the tests see whether a request computed a hash.

Put first in ``PASSWORD_HASHERS`` by the ``counted_hashes`` fixture; it is Django's own hasher
(same algorithm name and parameters), so hashes made before and after verify alike.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import Argon2PasswordHasher

CALLS: list[str] = []


class CountingArgon2PasswordHasher(Argon2PasswordHasher):
    def encode(self, password: str, salt: str) -> str:
        CALLS.append("encode")
        return super().encode(password, salt)

    def verify(self, password: str, encoded: str) -> bool:
        CALLS.append("verify")
        return bool(super().verify(password, encoded))

    def harden_runtime(self, password: str, encoded: str) -> Any:
        return super().harden_runtime(password, encoded)
