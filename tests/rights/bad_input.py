"""Request forms the rights form refuses, with the field it names: the portal's page and the API
are both tested against this one table (the form is theirs in common)."""

from __future__ import annotations

from typing import Any

BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"kind": "correction", "details": ""}, "details"),
    ({"kind": "access", "acting_as": "close_relative_of_deceased", "details": "my father"}, "kind"),
    ({"kind": "deceased_relative", "acting_as": "self", "details": "my father"}, "acting_as"),
    ({"acting_as": "guardian_of_child_under_14", "details": ""}, "details"),
    ({"email": "not-an-address"}, "email"),
    ({"kind": "nonsense"}, "kind"),
    ({"details": "bad\u202etext"}, "details"),
]
