"""A person's policy change notices: handed over in their export, deleted by their erasure."""

from __future__ import annotations

import pytest

from piwarden.people.actions import erase_person
from piwarden.people.registry import EXPORT_PURPOSE, export_person, held_by
from piwarden.policy.declaration import load_declaration
from piwarden.processing import gate
from piwarden.revisions.mail import send_change_notices
from piwarden.revisions.models import ChangeNotice
from piwarden.revisions.personal_data import export_notices
from tests.inquiries.test_mail import PEOPLE

pytestmark = pytest.mark.django_db


@pytest.mark.duty("CHG-01")
def test_the_notices_are_exported_and_erased_with_the_person(material, smtp) -> None:
    send_change_notices(str(material.pk))
    notice = ChangeNotice.objects.get(person__inquiries__language="en")
    with gate.processing(notice.person, EXPORT_PURPOSE, categories={"policy_notices"}, use=gate.Use("test")) as permit:
        (record,) = export_notices(permit)
    assert "policy_notices" in held_by(notice.person)  # so the whole export runs this exporter too
    assert record in list(export_person(notice.person, load_declaration(), context="test"))
    assert record["policy_version"] == "1.1"
    assert record["outcome"] == "sent"
    assert record["sent_at"] is not None
    assert smtp.collector.to(PEOPLE["en"]["email"])
    erase_person(notice.person, reason="The person asked for erasure by e-mail.")
    assert not ChangeNotice.objects.filter(person=notice.person).exists()
