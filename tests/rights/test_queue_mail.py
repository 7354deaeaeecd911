"""The staff's steps reach the person through a real SMTP server (aiosmtpd on 127.0.0.1): once,
and again later while the server was down (the task queues its own next attempt)."""

from __future__ import annotations

import pytest
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from piwarden.rights.mail import MailNotSent
from piwarden.rights.models import RequestKind, RequestStep
from piwarden.rights.tasks import send_step_mail
from tests.rights.mailbox import deliver
from tests.rights.staffing import act, console, verified_request

pytestmark = pytest.mark.django_db

EMAIL = "wang.fang@example.com"


def queued_steps() -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path="piwarden.rights.tasks.send_step_mail")
    )


@pytest.mark.duty("RGT-08")
def test_a_completion_is_retried_while_the_server_is_down_and_sent_exactly_once(carol, smtp):
    request = verified_request(EMAIL, kind=RequestKind.COMPLAINT, language="en")
    result = "We have reviewed your complaint and corrected the notice on our site."
    assert act(console(carol), request.reference, "complete", result=result).status_code == 302
    [job] = queued_steps()
    step_id = job.args_kwargs["args"][0]
    job.delete()
    smtp.stop()  # the mail server goes down
    with pytest.raises(MailNotSent):
        send_step_mail.call(step_id)  # the server is down: the next attempt is queued
    [retry] = queued_steps()
    assert retry.args_kwargs["args"] == [step_id, 2]
    assert retry.run_after is not None
    assert RequestStep.objects.get(pk=step_id).mailed_at is None
    smtp.start()
    assert deliver() == ["sent"]
    assert send_step_mail.call(step_id) == "already sent"
    [received] = [r for r in smtp.collector.to(EMAIL) if "completed" in r.subject]
    assert result in received.body
    assert request.reference in received.subject
    assert RequestStep.objects.get(pk=step_id).mailed_at is not None
