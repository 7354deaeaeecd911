"""The API is the third thin interface: it imports the domain apps, never the pages' interface."""

from __future__ import annotations

import ast
from pathlib import Path

import piwarden.api

API = Path(piwarden.api.__file__).parent


def test_the_api_imports_nothing_from_the_site_or_the_backoffice():
    imported = set()
    for source in API.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert not {m for m in imported if m.startswith(("piwarden.site", "piwarden.backoffice"))}
    assert "piwarden.rights.actions" in imported  # the portal's write paths
    assert "piwarden.rights.forms" in imported  # and its validation
