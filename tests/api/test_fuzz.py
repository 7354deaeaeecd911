"""Schemathesis over /api/openapi.json: every operation, no 5xx, every answer as the schema says.

The site runs in-process (its WSGI application on the test database) and the schema is the one
it serves.  The limits and the risk rules' block are loosened so that the generated requests reach the operations rather
than the 429.  The read of a request gets a real token (for another request than the generated
reference names, or none when the generation drops the header): its 404 and 401 are checked too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from piwarden.api import tokens
from piwarden.rights.actions import RequestInput, submit_request
from piwarden.rights.models import ActingAs, RequestKind
from tests.rights.mailbox import last_code_to

pytestmark = pytest.mark.django_db

EXAMPLES = 50  # per operation and mode: about 12 s a mode here, the file well under a minute
OPERATIONS = 6


@pytest.fixture
def api_schema(settings: Any) -> Iterator[schemathesis.BaseSchema]:
    settings.PIWARDEN_RIGHTS_RATE = settings.PIWARDEN_API_RATE = "1000000/m"
    settings.PIWARDEN_RIGHTS_MAIL_RATE = "1000000/h"
    settings.PIWARDEN_RISK_BLOCK = 1_000_000  # the daily count of forms sent from one address
    # As Django's test client does: the end of a request must not close the test's connection
    # (inside the test's transaction, it would).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_its_schema_says_and_never_5xx(api_schema, mode):
    given_request = RequestInput(RequestKind.ACCESS, "fuzz@example.com", "", ActingAs.SELF, "en")
    token = tokens.issue(submit_request(given_request))
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == OPERATIONS
    started = time.monotonic()
    for operation in operations:
        # werkzeug's client does not undo the site's gzip: ask for none.
        headers = {"Accept-Encoding": "identity"}
        if operation.method == "get":
            headers["Authorization"] = f"Bearer {token}"
        fuzz(operation, mode, headers)
    assert time.monotonic() - started < 60


def fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @examples(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answers_as_the_schema_says(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers=headers,
            checks=[not_a_server_error, response_schema_conformance],
            environ_overrides={"REMOTE_ADDR": "192.0.2.1"},  # werkzeug's client leaves it empty
        )

    answers_as_the_schema_says()


def test_the_successful_answers_match_the_schema_too(api_schema):
    """What random data seldom reaches: a request asked, verified with the mailed code and read."""
    operations = {(o.method, o.path): o for o in (result.ok() for result in api_schema.get_all_operations())}
    plain = {"Accept-Encoding": "identity"}

    def call(method: str, path: str, **kwargs: Any) -> Any:
        case = operations[method, path].Case(media_type="application/json" if "body" in kwargs else None, **kwargs)
        return case.call_and_validate(
            headers=plain,
            checks=[not_a_server_error, response_schema_conformance],
            environ_overrides={"REMOTE_ADDR": "192.0.2.1"},
        )

    asked = call("post", "/api/rights/requests", body={"kind": "access", "email": "fuzz@example.com"})
    assert asked.status_code == HTTPStatus.ACCEPTED
    reference = asked.json()["reference"]
    code = last_code_to("fuzz@example.com")
    opened = call(
        "post", "/api/rights/requests/{reference}/verify", path_parameters={"reference": reference}, body={"code": code}
    )
    assert opened.status_code == HTTPStatus.OK
    shown = call(
        "get",
        "/api/rights/requests/{reference}",
        path_parameters={"reference": reference},
        headers={"Authorization": f"Bearer {opened.json()['token']}"},
    )
    assert shown.status_code == HTTPStatus.OK
    followed = call(
        "post",
        "/api/rights/requests/{reference}/follow-code",
        path_parameters={"reference": reference},
        body={"email": "fuzz@example.com"},
    )
    assert followed.status_code == HTTPStatus.ACCEPTED
    code = last_code_to("fuzz@example.com")
    reopened = call(
        "post", "/api/rights/requests/{reference}/open", path_parameters={"reference": reference}, body={"code": code}
    )
    assert reopened.status_code == HTTPStatus.OK
