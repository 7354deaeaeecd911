"""What the children's protection announces to other apps (an extension point, not a core step).

Sent once the guardian's answer has committed, with the child's ``person``
(:class:`~piwarden.people.models.Person`, created by the request's ``on_consent``; None after a
refusal, when nothing of the child was ever stored) and the ``request``
(:class:`~piwarden.children.models.GuardianRequest`).  The accounts app connects to
:data:`guardian_consented` to make a pending child's account usable.  A receiver runs after the
commit and outside any transaction (it may open a durable one); one that raises is logged and the
others still run: the consent is recorded whatever a receiver does, and
``children.access.guardian_has_consented(person)`` answers from the record at any time.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent with sender=GuardianRequest and the keyword arguments person and request.
guardian_consented = Signal()
# The same arguments, ``person`` None: the guardian refused, and the child's sealed sign-up is destroyed.
guardian_declined = Signal()
