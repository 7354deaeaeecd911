"""The seam to visitor accounts: who is signed in, as a Person.

A visitor account's session (``piwarden.accounts.sessions``: its own cookie and table, never a
staff session) names the account and so the Person; everything here asks this one function, so
that nothing else in this app knows how a visitor signs in.  A request without the account cookie
costs nothing; a signed-in one, the session's look-up (memoised on the request), which brings the
account and the Person with it (one statement).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

from piwarden.accounts import sessions

if TYPE_CHECKING:
    from piwarden.people.models import Person


def signed_in_person(request: HttpRequest) -> Person | None:
    """The Person of the signed-in account holder making ``request``, or None (memoised on it)."""
    if hasattr(request, "visitor_person"):
        return request.visitor_person  # type: ignore[no-any-return]
    session = sessions.current(request)
    person = session.account.person if session is not None else None
    request.visitor_person = person  # type: ignore[attr-defined]
    return person
