"""Background work of the incident register: sending the notices of one incident, retried as every
e-mail is (:func:`piwarden.mailing.with_retry`).  The argument is the incident's id: nothing about a person."""

from __future__ import annotations

from django.tasks import task

from piwarden.mailing import with_retry


@task()
def deliver_notices(incident_id: str, attempt: int = 1) -> str:
    """E-mail every notice of the incident not sent yet (each once)."""
    from piwarden.incidents.mail import record_mail_failure, send_pending  # noqa: PLC0415  # mail imports the gate, which imports actions' callers

    return with_retry(deliver_notices, incident_id, attempt, send_pending, give_up=record_mail_failure)
