"""The acknowledgement e-mail asks the processing gate, through the real worker and a real SMTP server.

Between the submission and the worker's run, 王芳 withdraws her consent or restricts
processing.  The worker must then send her nothing, and the refusal must be in the
audit log; the sales notice (which holds no personal data) still goes out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from piwarden.audit.log import verify_chain
from piwarden.audit.models import AuditEvent
from piwarden.consent.actions import withdraw_consent
from piwarden.inquiries.models import Inquiry
from piwarden.people.actions import restrict_processing
from tests.inquiries import test_mail
from tests.inquiries.test_mail import PEOPLE, run_worker, submit
from tests.smtp import SMTPServer

pytestmark = pytest.mark.django_db(transaction=True)  # the worker commits and closes connections


def withdraw(inquiry: Inquiry) -> None:
    assert withdraw_consent(inquiry.person, "respond_inquiry", channel="web:privacy") == 1


def restrict(inquiry: Inquiry) -> None:
    assert restrict_processing(inquiry.person, by=None, reference="R-TEST-1") is True


@pytest.mark.duty("CON-04")
@pytest.mark.duty("RGT-01")
@pytest.mark.parametrize("change_of_mind", [withdraw, restrict], ids=["withdrawn", "restricted"])
def test_after_withdrawal_or_restriction_the_worker_mails_the_person_nothing(
    smtp: SMTPServer, settings: Any, change_of_mind: Callable[[Inquiry], None]
) -> None:
    person = PEOPLE["zh-hans"]
    inquiry = submit("zh-hans")
    change_of_mind(inquiry)

    run_worker()

    assert smtp.collector.to(person["email"]) == []
    for received in smtp.collector.received:  # whatever went out carries nothing of hers
        for value in test_mail.personal_values(person):
            assert value not in str(received.message)
    assert len(smtp.collector.to(settings.PIWARDEN_SALES_EMAIL)) == 1
    inquiry.refresh_from_db()
    assert inquiry.acknowledged_at is None
    assert not AuditEvent.objects.filter(event_type="inquiry.acknowledged").exists()
    refusal = AuditEvent.objects.get(event_type="processing.refused")
    assert refusal.person_id == inquiry.person_id
    assert refusal.purpose == "respond_inquiry"
    assert refusal.reason  # the gate's reason, kept for the person's request for an explanation
    assert refusal.fields == ["email"]  # what the refused use would have read
    assert refusal.extra == {
        "context": "inquiry.acknowledge",
        "category": "consultation",
        "inquiry": inquiry.reference,
        "refusal": refusal.reason,
    }
    assert verify_chain() is None

    run_worker()  # nothing is left queued that would mail her later
    assert smtp.collector.to(person["email"]) == []


def test_without_a_change_of_mind_the_same_path_does_mail_the_person(smtp: SMTPServer) -> None:
    """The control: the refusal above comes from the gate, not from a broken mail path."""
    inquiry = submit("zh-hans")
    run_worker()
    assert len(smtp.collector.to(PEOPLE["zh-hans"]["email"])) == 1
    assert not AuditEvent.objects.filter(event_type="processing.refused", person=inquiry.person).exists()
