"""Publishing a version (``piwarden policy publish``): kept with its digest, classified by the
material kinds of §十, refused without its notice or when it reduces rights unconfirmed, and the
consents it makes stale refused by the gate until the person is asked again."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client

from piwarden.audit.models import AuditEvent, EventType
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.models import Inquiry
from piwarden.policy.declaration import load_declaration
from piwarden.policy.models import PolicyVersion
from piwarden.policy.versions import current_snapshot, declaration_of
from piwarden.processing import gate
from piwarden.revisions.actions import ensure_published
from tests.conftest import consultation_data
from tests.policy.test_changes import HOTLINE, LONGER_RETENTION, NO_COMPLAINT, SLOWER
from tests.policy.test_declaration import edited

NEXT = [('version = "1.0"', 'version = "1.1"'), ("effective = 2026-11-25", "effective = 2099-01-01")]

pytestmark = pytest.mark.django_db


def redeclare(text: str) -> None:
    """Change the declaration of a test that already ``declared`` one (its own copy of the policy)."""
    (Path(settings.POLICY_DIR) / "declaration.toml").write_text(text, encoding="utf-8")
    load_declaration.cache_clear()


def publish(*args: str) -> str:
    out = StringIO()
    call_command("policy", "publish", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def notices(tmp_path: Path) -> list[str]:
    zh, en = tmp_path / "notice-zh.txt", tmp_path / "notice-en.txt"
    zh.write_text("我们更改了咨询热线。", encoding="utf-8")
    en.write_text("Our hotline number changed.", encoding="utf-8")
    return ["--notice-zh", str(zh), "--notice-en", str(en)]


@pytest.mark.duty("CHG-02")
def test_the_first_publish_keeps_the_declaration_in_force_as_version_one() -> None:
    output = publish()
    version = PolicyVersion.objects.get()
    declaration = load_declaration()
    assert "published version 1 (1.0), effective 2026-11-25" in output
    assert (version.number, version.label, version.effective) == (1, "1.0", declaration.effective)
    # Kept byte for byte: the declaration and texts give the digest of the declaration in force.
    assert version.digest == declaration.digest == current_snapshot().digest
    assert set(version.texts) == {"privacy/en.html", "privacy/zh-hans.html"}
    assert declaration_of(version).purpose_fingerprints == declaration.purpose_fingerprints
    assert not version.material
    event = AuditEvent.objects.get(event_type=EventType.POLICY_PUBLISHED)
    assert event.extra["version"] == 1
    assert event.extra["digest"] == declaration.digest
    # Again: nothing new is published, nothing recorded.
    assert "already in force" in publish()
    assert (
        PolicyVersion.objects.count() == AuditEvent.objects.filter(event_type=EventType.POLICY_PUBLISHED).count() == 1
    )


def test_serve_publishes_version_one_of_an_empty_history_and_warns_of_an_unpublished_change(declared) -> None:
    assert ensure_published() is None
    assert PolicyVersion.objects.get().number == 1
    declared(edited(HOTLINE, *NEXT))
    warning = ensure_published()
    assert warning is not None
    assert "run `piwarden policy publish`" in warning
    assert PolicyVersion.objects.count() == 1


@pytest.mark.duty("CHG-02")
def test_a_consent_links_to_the_version_it_was_given_under(client: Client) -> None:
    publish()
    response = client.post("/consultation/", consultation_data())
    assert response.status_code == 302
    record = ConsentRecord.objects.get()
    assert record.policy == PolicyVersion.objects.get(number=1)
    assert record.policy_id == load_declaration().digest


@pytest.mark.duty("CHG-01")
def test_a_material_change_without_its_notice_in_both_languages_is_refused(declared, notices) -> None:
    publish()
    declared(edited(HOTLINE, *NEXT))
    with pytest.raises(CommandError, match=r"not published: this is a material change \(contact\).*--notice-zh FILE"):
        publish()
    with pytest.raises(CommandError, match="needs its notice in both languages"):
        publish(*notices[:2])  # Chinese only
    assert PolicyVersion.objects.count() == 1
    output = publish(*notices)
    assert "contact: changed: Hotline (95015 -> 95016)" in output
    version = PolicyVersion.objects.get(number=2)
    assert version.kinds == ["contact"]
    assert (version.notice_zh, version.notice_en) == ("我们更改了咨询热线。", "Our hotline number changed.")


@pytest.mark.duty("CHG-01")
def test_kinds_the_declaration_cannot_show_are_declared_by_the_operator(declared, notices) -> None:
    publish()
    # A text-only change (the declaration's label and date aside): not material unless declared.
    declared(edited(*NEXT))
    with pytest.raises(CommandError, match=r"material change \(controller, impact_assessment\)"):
        publish("--kind", "impact_assessment", "--kind", "controller")
    publish("--kind", "impact_assessment", "--kind", "controller", *notices)
    version = PolicyVersion.objects.get(number=2)
    assert version.kinds == version.declared_kinds == ["controller", "impact_assessment"]


@pytest.mark.duty("CHG-01")
@pytest.mark.parametrize("reduction", [NO_COMPLAINT, SLOWER], ids=["a right removed", "a longer deadline"])
def test_rights_are_never_reduced_without_confirming_explicit_consent(declared, notices, reduction) -> None:
    publish()
    declared(edited(reduction, *NEXT))
    with pytest.raises(CommandError, match=r"reduces people's rights .*--explicit-consent-will-be-sought"):
        publish(*notices)
    assert PolicyVersion.objects.count() == 1
    publish(*notices, "--explicit-consent-will-be-sought")
    version = PolicyVersion.objects.get(number=2)
    assert version.reduces_rights
    assert version.kinds == ["rights"]
    assert AuditEvent.objects.filter(event_type=EventType.POLICY_PUBLISHED).last().extra["reduces_rights"] is True


def test_a_new_version_needs_its_own_label_and_a_date_to_come(declared, notices) -> None:
    publish()
    declared(edited(HOTLINE))
    with pytest.raises(CommandError, match=r"policy\.version still says '1\.0'"):
        publish(*notices)
    redeclare(edited(HOTLINE, NEXT[0]))
    with pytest.raises(CommandError, match=r"policy\.effective = 2026-11-25 in declaration\.toml has passed"):
        publish(*notices)
    redeclare(edited(HOTLINE, *NEXT))
    with pytest.raises(CommandError, match=r"--effective 2099-02-01 differs from policy\.effective = 2099-01-01"):
        publish("--effective", "2099-02-01", *notices)
    publish("--effective", "2099-01-01", *notices)
    assert PolicyVersion.objects.get(number=2).effective == datetime.date(2099, 1, 1)


@pytest.mark.duty("CON-03")
@pytest.mark.duty("CHG-01")
def test_consent_to_a_changed_purpose_stops_processing_until_the_person_is_asked_again(
    client: Client, declared: Callable[[str], None], notices: list[str]
) -> None:
    publish()
    assert client.post("/consultation/", consultation_data()).status_code == 302
    inquiry = Inquiry.objects.get()
    use = gate.Use("test.answer")

    def answer() -> None:
        with gate.processing(inquiry.person, "respond_inquiry", categories={"consultation"}, use=use):
            pass

    answer()  # allowed on the consent given with the request
    declared(edited(LONGER_RETENTION, *NEXT))  # the consultation data is kept longer: material, kind (1)
    output = publish(*notices)
    assert "consents to these purposes are now stale and will be asked again: respond_inquiry" in output
    with pytest.raises(gate.ProcessingRefused, match="the purpose changed since consent was given"):
        answer()
    # The next time the person acts (a new request), they are asked, and their new consent counts.
    assert client.post("/consultation/", consultation_data(submission_token=str(uuid.uuid4()))).status_code == 302
    newest = ConsentRecord.objects.order_by("-given_at").first()
    assert newest is not None
    assert newest.policy == PolicyVersion.objects.get(number=2)
    answer()
