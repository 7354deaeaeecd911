"""Background work of children's protection: thin retry wrappers.

* :func:`send_guardian_mail`: the guardian's e-mail (``children.mail``), retried with back-off as
  every mail task is (:func:`piwarden.mailing.with_retry`).
* :func:`erase_child_data`: the erasure of a child's data collected without a guardian's consent
  (``children.erasure.erase_unconsented_child_data``, idempotent), queued with the flag or the
  refusal that calls for it and run at once by the worker ("as soon as possible", CHD-04).  If it
  fails (the erasure ledger unavailable, the database busy), it queues its own next attempt, 1, 2,
  4 … 60 minutes later, and fails this run, so the failure shows in the task results.
"""

from __future__ import annotations

import datetime

from django.tasks import task
from django.utils import timezone

from piwarden.children.erasure import erase_unconsented_child_data
from piwarden.children.mail import record_mail_failure, send_guardian_request
from piwarden.mailing import with_retry


@task()
def send_guardian_mail(request_id: str, attempt: int = 1) -> str:
    """E-mail the guardian the link to consent or refuse (if the gate allows it)."""
    return with_retry(send_guardian_mail, request_id, attempt, send_guardian_request, give_up=record_mail_failure)


@task()
def erase_child_data(person_id: str, attempt: int = 1) -> str:
    """Erase a child's data that no guardian consented to; try again later if it cannot now."""
    try:
        return "erased" if erase_unconsented_child_data(person_id) else "nothing to erase"
    except Exception:
        delay = datetime.timedelta(minutes=min(2 ** (attempt - 1), 60))
        erase_child_data.using(run_after=timezone.now() + delay).enqueue(person_id, attempt + 1)
        raise
