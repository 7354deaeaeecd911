"""File stores: places outside the database where an app writes files.

Tables are found through the app registry; files are not, so an app that
writes files names each place on its AppConfig::

    class VaultConfig(AppConfig):
        file_stores = (FileStore("outbox", "PIWARDEN_OUTBOX_DIR/*.eml.sealed", sealed=True),)

``policy check`` then demands that each store be declared as
``"<app_label>:<name>"``, in a category's ``files`` or in ``non_personal``,
exactly as it demands a declaration for each model field.  This module imports
nothing of Django's models, so that ``apps.py`` modules can use it.
"""

from __future__ import annotations

from typing import NamedTuple


class FileStore(NamedTuple):
    name: str
    # Where the files are, for the operator reading `policy check` (a setting and a pattern).
    where: str
    # Every file is encrypted (the file-store counterpart of an encrypted field): only a sealed
    # store may hold an encrypted category, and a sealed store is never declared non-personal.
    sealed: bool
