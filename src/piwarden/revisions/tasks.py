"""Background work of a published version: the direct notices, retried until every one went out."""

from __future__ import annotations

from django.tasks import task

from piwarden.mailing import with_retry
from piwarden.revisions.mail import record_notices_failure, send_change_notices


@task()
def notify_policy_change(version_id: str, attempt: int = 1) -> str:
    """E-mail everyone whose contact details we hold of a material change (each person once)."""
    return with_retry(notify_policy_change, version_id, attempt, send_change_notices, give_up=record_notices_failure)
