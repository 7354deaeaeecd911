"""Helpers for the rights tests: run the queued rights e-mails, read a code from a message."""

from __future__ import annotations

import re

from django.core import mail
from django.tasks import TaskResultStatus
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

CODE = re.compile(r"^\s+(\d{6})\s*$", re.MULTILINE)  # the code stands on a line of its own


def deliver() -> list[str]:
    """Run the queued rights tasks (e-mails, the archive's build) as the worker would, oldest first."""
    outcomes = []
    jobs = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path__startswith="piwarden.rights.")
    for job in jobs.order_by("enqueued_at", "id"):
        task = import_string(job.task_path)
        outcomes.append(task.call(*job.args_kwargs["args"], **job.args_kwargs["kwargs"]))
        job.delete()
    return outcomes


def messages_to(address: str) -> list[mail.EmailMessage]:
    return [m for m in mail.outbox if address in m.to]


def code_in(body: str) -> str:
    found = CODE.search(body)
    assert found is not None, body
    return found.group(1)


def last_code_to(address: str) -> str:
    """Deliver what is queued, and the code in the last e-mail to ``address``."""
    deliver()
    sent = messages_to(address)
    assert sent, f"no e-mail to {address}"
    return code_in(sent[-1].body)
