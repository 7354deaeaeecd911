"""The direct notice of a material change: one e-mail to everyone whose contact details we hold, in
their language, exactly once (a re-run, or a retry after the mail server failed half-way, sends
only the rest), read back from a real SMTP server."""

from __future__ import annotations

import pytest
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import AuditEvent, EventType
from piwarden.inquiries.models import Inquiry
from piwarden.mailing import MailNotSent
from piwarden.policy.models import PolicyVersion
from piwarden.revisions.mail import make_notices, send_change_notices
from piwarden.revisions.models import ChangeNotice, NoticeOutcome
from piwarden.vault import blind
from tests.accounts.helpers import confirmed_account
from tests.inquiries.test_mail import PEOPLE, submit
from tests.policy.test_declaration import edited
from tests.revisions.conftest import RIGHTS_EMAIL
from tests.revisions.test_actions import NEXT, publish

pytestmark = pytest.mark.django_db


def addresses() -> list[str]:
    return [PEOPLE["zh-hans"]["email"], PEOPLE["en"]["email"], RIGHTS_EMAIL]


@pytest.mark.duty("CHG-01")
def test_everyone_with_contact_details_is_told_once_in_their_language(material, smtp) -> None:
    assert send_change_notices(str(material.pk)) == "3 sent"
    received = {address: smtp.collector.to(address) for address in addresses()}
    assert {address: len(mails) for address, mails in received.items()} == dict.fromkeys(addresses(), 1)
    (zh,) = received[PEOPLE["zh-hans"]["email"]]
    assert zh.subject == "我们的隐私政策已更新（版本 1.1）"
    assert "我们的咨询热线改为 95016。" in zh.body
    assert "负责部门、联系方式或投诉渠道" in zh.body
    assert "/privacy/versions/" in zh.body
    (en,) = received[PEOPLE["en"]["email"]]
    assert en.subject == "Our privacy policy has changed (version 1.1)"
    assert "Our hotline is now 95016." in en.body
    assert "the responsible department, contact or complaint channel" in en.body
    # The restricted person is not written to (the gate refused, and said so).
    outcomes = sorted(ChangeNotice.objects.values_list("outcome", flat=True))
    assert outcomes == [NoticeOutcome.REFUSED, NoticeOutcome.SENT, NoticeOutcome.SENT, NoticeOutcome.SENT]
    assert AuditEvent.objects.filter(event_type=EventType.POLICY_NOTICE_SENT).count() == 3
    # Run again: nobody is told twice.
    assert send_change_notices(str(material.pk)) == "0 sent"
    assert len(smtp.collector.received) == 3
    assert ChangeNotice.objects.count() == 4


@pytest.mark.duty("CHG-01")
def test_an_account_holder_who_never_wrote_to_us_is_told_too(material, smtp) -> None:
    confirmed_account(smtp, "chen.jing@example.com", "en")
    assert send_change_notices(str(material.pk)) == "4 sent"
    [notice] = [m for m in smtp.collector.to("chen.jing@example.com") if "privacy policy" in m.subject]
    assert notice.subject == "Our privacy policy has changed (version 1.1)"
    assert "Our hotline is now 95016." in notice.body
    assert send_change_notices(str(material.pk)) == "0 sent"


@pytest.mark.duty("CHG-01")
def test_a_mail_server_failing_half_way_sends_the_rest_on_the_next_run_and_nobody_twice(material, smtp) -> None:
    smtp.collector.refuse = {PEOPLE["en"]["email"]}
    with pytest.raises(MailNotSent):
        send_change_notices(str(material.pk))
    assert smtp.collector.to(PEOPLE["en"]["email"]) == []
    smtp.collector.refuse = set()
    send_change_notices(str(material.pk))
    assert {address: len(smtp.collector.to(address)) for address in addresses()} == dict.fromkeys(addresses(), 1)
    assert ChangeNotice.objects.filter(outcome=NoticeOutcome.PENDING).count() == 0


def test_a_version_that_is_not_material_tells_nobody(declared, smtp, django_capture_on_commit_callbacks) -> None:
    publish()
    submit("en")
    declared(edited(*NEXT))
    with django_capture_on_commit_callbacks(execute=True):
        publish()
    version = PolicyVersion.objects.get(number=2)
    assert not version.material
    assert not DBTaskResult.objects.filter(task_path="piwarden.revisions.tasks.notify_policy_change").exists()
    assert send_change_notices(str(version.pk)) == "not a material change"
    assert smtp.collector.received == []


@pytest.mark.duty("CHG-01")
def test_a_person_whose_address_is_gone_by_the_sending_is_not_written_to_and_that_is_recorded(material, smtp) -> None:
    make_notices(material)
    # Between the queuing and the sending, the consultation that held the English speaker's address went.
    Inquiry.objects.filter(person__email_index=blind.email_index(PEOPLE["en"]["email"])).delete()
    assert send_change_notices(str(material.pk)) == "2 sent"
    assert smtp.collector.to(PEOPLE["en"]["email"]) == []
    outcomes = sorted(ChangeNotice.objects.values_list("outcome", flat=True))
    assert outcomes == [NoticeOutcome.NO_CONTACT, NoticeOutcome.REFUSED, NoticeOutcome.SENT, NoticeOutcome.SENT]
    assert AuditEvent.objects.filter(event_type=EventType.POLICY_NOTICE_SENT).count() == 2
    assert send_change_notices(str(material.pk)) == "0 sent"
