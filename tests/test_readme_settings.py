"""The README's configuration table lists every setting the code reads from the environment, and
nothing the code does not read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "piwarden"

# Read by the code but not settings of the site: Django's own choice of settings module, and the
# test-support plugin (src/piwarden/testing), which sets up the test run's environment.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}
TEST_SUPPORT = SOURCE / "testing"

READS = re.compile(
    r"""(?:\benv(?P<kind>[a-z]*)\(\s*|os\.environ(?:\.get|\.setdefault|\.pop)?\(\s*|os\.environ\[\s*|getenv\(\s*)"""
    r"""["'](?P<name>[A-Z][A-Z0-9_]+)["']"""
)


def read_by_code() -> set[str]:
    names = set()
    for path in SOURCE.rglob("*.py"):
        if TEST_SUPPORT in path.parents:
            continue
        for match in READS.finditer(path.read_text(encoding="utf-8")):
            names.add(match["name"])
            if match["kind"] == "secret":  # envsecret(NAME) also reads NAME_FILE
                names.add(f"{match['name']}_FILE")
    return names - NOT_SETTINGS


def listed_in_readme() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Configuration (environment)", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        first_column = line.split("|")[1]
        for token in re.findall(r"`([A-Z][A-Z0-9_]+)(\[_FILE\])?`", first_column):
            names.add(token[0])
            if token[1]:
                names.add(f"{token[0]}_FILE")
    return names


def test_the_reader_finds_what_it_should():
    found = read_by_code()
    assert {"PIWARDEN_SITE_URL", "PIWARDEN_LOGIN_FAILURE_LIMIT", "PIWARDEN_SSL_REDIRECT", "SECRET_KEY_FILE"} <= found
    assert {"PORT", "FORWARDED_ALLOW_IPS", "EMAIL_HOST_PASSWORD_FILE"} <= found


def test_every_setting_the_code_reads_is_in_the_readme_table_and_no_other():
    code, readme = read_by_code(), listed_in_readme()
    assert sorted(code - readme) == [], "read by the code, missing from README.md's table"
    assert sorted(readme - code) == [], "in README.md's table, read by no code"
