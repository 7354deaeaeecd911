"""The material change the notices' tests share: version 1, people to tell, then version 2."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from piwarden.inquiries.models import Inquiry
from piwarden.people.models import Person
from piwarden.policy.models import PolicyVersion
from tests.conftest import consultation_data
from tests.inquiries.test_mail import submit
from tests.policy.test_changes import HOTLINE
from tests.policy.test_declaration import edited
from tests.processing.test_nothing_unwrapped import received_rights_request
from tests.revisions.test_actions import NEXT, publish

RIGHTS_EMAIL = "li.na@example.com"


@pytest.fixture
def material(declared, tmp_path, django_capture_on_commit_callbacks) -> PolicyVersion:
    """Version 1, three people with contact details and one who restricted processing, then version 2 (material)."""
    publish()
    submit("zh-hans")
    submit("en")
    received_rights_request(RIGHTS_EMAIL)
    response = Client().post("/consultation/", consultation_data(email="zhao.lei@example.com"))
    assert response.status_code == 302
    Person.objects.filter(pk=Inquiry.objects.latest("submitted_at").person_id).update(restricted_at=timezone.now())
    declared(edited(HOTLINE, *NEXT))
    zh, en = tmp_path / "zh.txt", tmp_path / "en.txt"
    zh.write_text("我们的咨询热线改为 95016。", encoding="utf-8")
    en.write_text("Our hotline is now 95016.", encoding="utf-8")
    with django_capture_on_commit_callbacks(execute=True):
        publish("--notice-zh", str(zh), "--notice-en", str(en))
    version = PolicyVersion.objects.get(number=2)
    # The publish queued the notices for the task worker.
    assert DBTaskResult.objects.filter(task_path="piwarden.revisions.tasks.notify_policy_change").count() == 1
    return version
