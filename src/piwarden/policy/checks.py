from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error, Tags, register

from piwarden.policy.declaration import load_declaration
from piwarden.policy.inventory import inspect_inventory


@register(Tags.models)
def check_inventory(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    report = inspect_inventory(load_declaration())
    return [Error(problem, id="piwarden.E001") for problem in report.problems]


@register(Tags.security, deploy=True)
def check_captcha(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.PIWARDEN_CAPTCHA == "off":
        return [
            checks.Warning(
                "PIWARDEN_CAPTCHA=off: the consultation form has no graphic CAPTCHA.",
                hint="Only do this behind bot protection of your own; policy §二 names graphic verification codes.",
                id="piwarden.W001",
            )
        ]
    if settings.CAPTCHA_TEST_MODE:
        return [Error("PIWARDEN_CAPTCHA_TEST_MODE is on: any CAPTCHA answer 'PASSED' is accepted.", id="piwarden.E002")]
    return []


@register(Tags.security, deploy=True)
def check_mailer(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.MAILERS["default"]["BACKEND"] == "piwarden.vault.outbox.SealedFileBackend":
        return [
            checks.Warning(
                "PIWARDEN_EMAIL=file: e-mail is sealed into files under the data directory and never delivered.",
                hint="Set PIWARDEN_EMAIL=smtp and EMAIL_HOST for a site that must answer people.",
                id="piwarden.W002",
            )
        ]
    return []
