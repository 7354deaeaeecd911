"""``piwarden check --deploy``: the keys must be the database's, and every data key must unwrap.

Deploy-only, and silent while the database is absent or not migrated: plain ``check``,
``makemigrations`` and a test run's start-up never query a database that is not there.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

from piwarden.vault.keycheck import database_ready, verify_keys, wrapped_under_absent_keks
from piwarden.vault.keys import VaultUnavailable, get_provider


@register(Tags.security, deploy=True)
def check_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not database_ready():
        return []
    try:
        verify_keys(record=False)
    except VaultUnavailable as exc:  # KeysRefused, or a PIWARDEN_KEYS this build cannot use
        return [Error(str(exc), id="vault.E001")]
    # Cheap, by id (no unwrapping): `piwarden keys status` tries every key.  verify_keys refuses
    # these too; without a check row (an older database) only this count finds them.
    unopenable = wrapped_under_absent_keks(get_provider())
    if unopenable:
        return [
            Error(
                f"{unopenable} data keys are wrapped under KEK keys that PIWARDEN_KEYS={settings.PIWARDEN_KEYS} "
                "does not hold: those people's data cannot be read.",
                hint="Restore the retired KEK keys from backup; `piwarden keys status` counts what cannot unwrap.",
                id="vault.E002",
            )
        ]
    return []
