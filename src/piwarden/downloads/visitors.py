"""The seam to visitor accounts: who is signed in, as a Person.

The accounts middleware (``piwarden.accounts``) sets ``request.visitor_person`` for a signed-in
account holder; everything here asks this one function, so that nothing else in this app knows
how a visitor signs in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from piwarden.people.models import Person


def signed_in_person(request: HttpRequest) -> Person | None:
    """The Person of the signed-in account holder making ``request``, or None."""
    return getattr(request, "visitor_person", None)
