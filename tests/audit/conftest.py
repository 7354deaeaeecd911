"""The attacker of the tampering tests holds DDL rights: they drop the append-only triggers first."""

from __future__ import annotations

import pytest
from django.db import connection

from piwarden.audit import appendonly


def drop_triggers() -> None:
    """Drop the audit log's triggers, as someone who can alter the schema would before tampering.
    A ``db`` test's rollback puts them back; after a ``transactional_db`` one, flush does."""
    appendonly.remove(connection)


@pytest.fixture
def triggers_dropped(db: None) -> None:  # with a transaction=True mark, db is transactional
    drop_triggers()
