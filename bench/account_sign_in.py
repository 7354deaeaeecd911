"""Visitor sign-in (issue 9 §1): sign-ins per second per core, and what a throttled attempt costs.

    .venv/bin/python bench/account_sign_in.py [--rounds 40]

In one process (one core), on a fresh SQLite data directory, through the whole Django stack
(Django's test ``Client`` posting to ``/en/account/sign-in/``, every middleware included):

* ``sign-in``: a right password, the session opened and the login log written;
* ``wrong password``: a known address, a wrong password (the hash verified, the log written);
* ``unknown address``: the same answer, the dummy hash verified;
* ``throttled``: an attempt refused by ``accounts.throttle`` (429);
* ``argon2 verify alone``: Django's ``check_password`` on the same hash, no HTTP.

CPU is ``time.process_time`` per request (the median of ``--rounds``); "per core" is 1 / that.
Each throttled attempt also counts the Argon2 calls (Django's hasher, counted by a subclass put in
its place): the figure printed must be 0.  Wall times are printed beside, as the comparison of
known and unknown addresses is about what an observer can time.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchenv import configure

PASSWORD = "correct horse battery staple"  # noqa: S105  # the benchmark's own account


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configure(Path(tmp))
        report(run(args.rounds))


def measure(rounds: int, call: Callable[[], Any]) -> tuple[float, float]:
    """Median CPU and wall seconds of ``call``."""
    cpu, wall = [], []
    for _ in range(rounds):
        c0, w0 = time.process_time(), time.perf_counter()
        call()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def run(rounds: int) -> dict[str, Any]:  # one flat measurement script
    import django  # noqa: PLC0415  # only after configure()
    from django.conf import settings  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415

    django.setup()
    logging.getLogger("django.request").setLevel(logging.ERROR)
    call_command("migrate", interactive=False, verbosity=0)
    call_command("keys", "init", stdout=io.StringIO())
    call_command("collectstatic", interactive=False, verbosity=0)  # the pages name the hashed files
    from django.contrib.auth.hashers import (  # noqa: PLC0415
        Argon2PasswordHasher,
        check_password,
        get_hashers,
        get_hashers_by_algorithm,
    )
    from django.test import Client  # noqa: PLC0415

    from piwarden.accounts.actions import SignUp, sign_up, verify_email  # noqa: PLC0415
    from piwarden.accounts.models import Account  # noqa: PLC0415
    from piwarden.vault.blind import email_index  # noqa: PLC0415

    calls: list[str] = []

    class Counting(Argon2PasswordHasher):
        def verify(self, password: str, encoded: str) -> bool:
            calls.append("verify")
            return bool(super().verify(password, encoded))

    module = sys.modules[__name__]
    module.Counting = Counting  # type: ignore[attr-defined]  # importable by Django's hasher loader
    settings.PASSWORD_HASHERS = [f"{__name__}.Counting", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()
    unlimited = "1000000/m"
    settings.PIWARDEN_SIGN_IN_RATE = settings.PIWARDEN_SIGN_IN_PAIR_RATE = unlimited
    settings.PIWARDEN_SIGN_IN_ACCOUNT_RATE = unlimited
    settings.ALLOWED_HOSTS = ["testserver"]

    email = "bench.account@example.com"
    sign_up(SignUp(email, "", __import__("datetime").date(1990, 5, 17), "", PASSWORD, "en"))
    account = verify_email(Account.objects.get(email_index=email_index(email)))
    client = Client()

    def post(address: str, password: str, expect: int) -> None:
        response = client.post("/en/account/sign-in/", {"email": address, "password": password})
        assert response.status_code == expect, response.status_code  # a benchmark's sanity check

    for _ in range(3):  # warm-up: templates, catalogues, the dummy hash
        post(email, PASSWORD, 302)
        post("nobody@example.com", PASSWORD, 400)
    results: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    results["sign-in"] = measure(rounds, lambda: post(email, PASSWORD, 302))
    results["wrong password"] = measure(rounds, lambda: post(email, "a wrong guess, long enough", 400))
    results["unknown address"] = measure(rounds, lambda: post("nobody@example.com", "a wrong guess, long", 400))
    results["argon2 verify alone"] = measure(rounds, lambda: check_password(PASSWORD, account.password))
    settings.PIWARDEN_SIGN_IN_PAIR_RATE = "1/d"
    post("flooded@example.com", "first try, counted", 400)
    calls.clear()
    results["throttled"] = measure(rounds * 5, lambda: post("flooded@example.com", PASSWORD, 429))
    results["hashes in throttled attempts"] = len(calls)
    results["throttled attempts"] = rounds * 5
    results["load_after"] = os.getloadavg()[0]
    return results


def report(results: dict[str, Any]) -> None:
    print(f"load average {results['load_before']:.1f} before, {results['load_after']:.1f} after")
    print(f"{'case':<22} {'CPU ms':>8} {'wall ms':>8} {'per core /s':>12}")
    for case in ("sign-in", "wrong password", "unknown address", "throttled", "argon2 verify alone"):
        cpu, wall = results[case]
        print(f"{case:<22} {cpu * 1000:8.1f} {wall * 1000:8.1f} {1 / cpu if cpu else float('inf'):12.1f}")
    hashes, attempts = results["hashes in throttled attempts"], results["throttled attempts"]
    print(f"Argon2 verifications during {attempts} throttled attempts: {hashes}")
    if hashes:
        sys.exit("a throttled attempt computed a hash")


if __name__ == "__main__":
    main()
