"""The environment every in-process benchmark runs Django in: a data directory of its own, no key
or secret inherited from the caller's shell, DEBUG off, quiet logs."""

from __future__ import annotations

import os
from pathlib import Path


def configure(data_dir: Path, **extra: str) -> None:
    """Point Django at ``data_dir`` (before ``django.setup()``); ``extra`` adds settings."""
    for inherited in ("PIWARDEN_KEYS", "SECRET_KEY", "SECRET_KEY_FILE"):
        os.environ.pop(inherited, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "piwarden.settings",
            "PIWARDEN_DATA_DIR": str(data_dir),
            "DEBUG": "off",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
