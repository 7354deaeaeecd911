"""Test-only stand-in for the accounts middleware: sets ``request.visitor_person`` as it will.

The header names a real Person (made by ``people.actions.find_or_create_person``); everything
after it (the consent cookie, the views, the recording) is the real code.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from piwarden.people.models import Person

HEADER = "X-Test-Person"


class SignedInAs:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        person_id = request.headers.get(HEADER)
        if person_id:
            request.visitor_person = Person.objects.get(pk=person_id)  # type: ignore[attr-defined]
        return self.get_response(request)
