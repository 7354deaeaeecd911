"""The rights request's e-mails through a real SMTP server (aiosmtpd): sent once, retried, refused by the gate."""

from __future__ import annotations

import pytest
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import AuditEvent
from piwarden.people.actions import erase_person
from piwarden.people.models import Person
from piwarden.rights.actions import RequestInput, submit_request, verify_request
from piwarden.rights.mail import MailNotSent, send_code, send_receipt
from piwarden.rights.models import ActingAs, RequestKind, RightsRequest, VerificationCode
from piwarden.rights.tasks import CODE_MAIL_ATTEMPTS, send_code_mail
from tests.rights.mailbox import code_in

pytestmark = pytest.mark.django_db

ADDRESS = "sun.li@example.com"


def submitted(language: str = "zh-hans") -> RightsRequest:
    given = RequestInput(kind=RequestKind.COPY, email=ADDRESS, details="", acting_as=ActingAs.SELF, language=language)
    return submit_request(given)


def test_the_code_goes_out_once_and_is_then_kept_only_as_its_digest(smtp):
    request = submitted()
    code = VerificationCode.objects.get(request=request)
    assert send_code(str(code.pk)) == "sent"
    assert send_code(str(code.pk)) == "already sent"
    [message] = smtp.collector.to(ADDRESS)
    assert request.reference in message.subject
    assert "一次性验证码" in message.subject  # the request's language
    code.refresh_from_db()
    assert code.sealed_code is None
    assert verify_request(request.reference, code_in(message.body)).ok


def test_a_refused_send_is_retried_and_the_last_failure_is_audited_without_the_address(smtp):
    smtp.collector.refuse.add(ADDRESS)
    request = submitted("en")
    code = VerificationCode.objects.get(request=request)
    with pytest.raises(MailNotSent) as raised:
        send_code_mail.call(str(code.pk))
    assert ADDRESS not in str(raised.value)
    retry = DBTaskResult.objects.filter(status=TaskResultStatus.READY, args_kwargs__args__1=2).get()
    assert retry.run_after is not None
    assert retry.run_after > timezone.now()
    code.refresh_from_db()
    assert code.sealed_code is not None  # still waiting to be sent

    with pytest.raises(MailNotSent):
        send_code_mail.call(str(code.pk), CODE_MAIL_ATTEMPTS)
    [failed] = AuditEvent.objects.filter(event_type="mail.failed")
    assert failed.person_id == request.person_id
    assert failed.extra["request"] == request.reference
    assert ADDRESS not in str(failed.extra) + failed.reason


def test_a_restricted_person_still_gets_the_receipt_and_an_erased_one_nothing(smtp):
    request = submitted("en")
    code = VerificationCode.objects.get(request=request).sealed_code
    assert code is not None
    assert verify_request(request.reference, code).ok
    # Answering a rights request is a legal duty that survives a restriction (PIPL 44, 47).
    Person.objects.filter(pk=request.person_id).update(restricted_at=timezone.now())
    assert send_receipt(str(request.pk)) == "sent"
    assert len(smtp.collector.to(ADDRESS)) == 1

    other = submit_request(
        RequestInput(
            kind=RequestKind.DELETION, email="gone@example.com", details="", acting_as=ActingAs.SELF, language="en"
        )
    )
    erase_person(other.person, reason="Erased at the person's request by phone")
    pending = VerificationCode.objects.get(request=other)
    assert send_code(str(pending.pk)).startswith("refused")
    assert smtp.collector.to("gone@example.com") == []
