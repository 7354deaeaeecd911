"""Fulfilment: what completing a request executes, kind by kind (issue 7 §4).

Staff confirm every execution by completing the request in the queue; nothing runs by itself
right after the person's verification.  Why: the one-time code proves that the requester reads
the e-mail address they gave, not that the data held under it is theirs to ask for (a guardian,
a relative of a deceased person, a shared or mistyped address), and an erasure cannot be undone.
A staff member reads the request and confirms, which the law allows ("promptly", PIPL 45-50)
and the 15-working-day clock bounds; the queue's reminders and escalation keep it prompt.

* access, copy: the archive of everything about the person is built by a task;
* deletion: the person is erased (every category's eraser, crypto-shredding, the ledger), after
  the completion e-mail went out (the address is unreadable after the erasure);
* restriction: processing is restricted (the gate then allows only what survives it);
* withdrawal: consent to the purpose staff confirm is withdrawn, and what rested on it alone deleted;
* correction: the values staff confirm are written everywhere they are held;
* explanation, complaint, cancellation, deceased relative: the written answer is the result.

Each execution is its own write path (a durable transaction with its audit event), run before
the completion is recorded; each is idempotent, so completing again after a crash in between
does nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy

from piwarden.rights.models import RightsRequest


@dataclass(frozen=True)
class Fulfilment:
    """What staff confirm on completion, for the kinds that need it."""

    corrections: dict[str, str] = field(default_factory=dict)  # correction: declared field -> new value
    purpose: str = ""  # withdrawal: the consent-based purpose withdrawn


@dataclass(frozen=True)
class Executed:
    done: bool  # the right was executed (or is queued to be, for an archive or an erasure)
    what: str  # for the audit event: what ran ("archive", "erasure", ...; "answer" for a written one)


def execute(actor: User, request: RightsRequest, fulfilment: Fulfilment) -> Executed:
    """Run the execution of ``request``'s kind that must happen before its completion is recorded."""
    return Executed(done=False, what="answer")


def after_completion(request: RightsRequest) -> None:
    """In the completion's transaction: queue what runs after it (the archive's build)."""


def after_step_mail(step_id: str) -> None:
    """After a step's e-mail went out (or finally failed): a completed deletion now erases."""


def correctable_fields() -> list[tuple[str, str]]:
    """(declared field, label) of what a correction may change; none until correction is wired."""
    return []


ANSWER = gettext_lazy("Completing sends your written result to the person; nothing else runs.")
EXECUTES: dict[str, Any] = {}  # kind -> what completing it executes, once wired (see execute())


def describe(kind: str) -> str:
    """What completing a request of this kind does, for the staff member about to confirm it."""
    return str(EXECUTES.get(kind, ANSWER))
