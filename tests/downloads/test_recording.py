"""The two histories are recorded only for a signed-in person who allowed their category.

Each test goes through the real views and middleware with a real Person and a real cookie choice
made on /cookies/; only ``request.visitor_person`` is set by the test's stand-in for the accounts
middleware (``tests/downloads/visitor.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

import pytest
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from piwarden.audit.log import EventType
from piwarden.audit.models import AuditEvent
from piwarden.downloads import browsing
from piwarden.downloads.models import DownloadRecord, PageView, Resource
from piwarden.people.actions import erase_person, find_or_create_person, lift_restriction, restrict_processing
from piwarden.people.models import Person
from piwarden.people.registry import Section, export_person
from piwarden.policy.declaration import load_declaration

pytestmark = pytest.mark.django_db

Visitor = Callable[..., Client]


def download(client: Client, resource: Resource) -> None:
    response = client.get(f"/downloads/{resource.pk}/")
    assert response.status_code == HTTPStatus.OK
    b"".join(response.streaming_content)


# --- download history (functional) ------------------------------------------------------------


@pytest.mark.duty("CON-02")
def test_a_download_is_recorded_for_a_signed_in_person_who_allowed_functional(visitor: Visitor, person, resource):
    client = visitor("choose", functional="on")
    download(client, resource)
    record = DownloadRecord.objects.get()
    assert (record.person_id, record.resource_id) == (person.pk, resource.pk)


@pytest.mark.duty("CON-02")
@pytest.mark.duty("CON-05")
@pytest.mark.parametrize(
    ("action", "choice"),
    [("", {}), ("reject_all", {}), ("choose", {"analytics": "on"})],
    ids=["no choice", "rejected", "analytics only"],
)
def test_without_functional_consent_a_download_stores_nothing_per_person(visitor: Visitor, resource, action, choice):
    client = visitor(action, **choice)
    download(client, resource)  # the download itself works all the same
    assert not DownloadRecord.objects.exists()
    assert not PageView.objects.exists()
    assert browsing.waiting() == 0


@pytest.mark.duty("CON-02")
def test_a_visitor_who_is_not_signed_in_leaves_no_history(client: Client, resource, signed_in_middleware):
    client.post("/cookies/", {"action": "accept_all"}, HTTP_SEC_FETCH_SITE="same-origin")
    download(client, resource)
    client.get("/downloads/")
    assert not DownloadRecord.objects.exists()
    assert browsing.waiting() == 0


# --- browsing history (analytics) --------------------------------------------------------------


@pytest.mark.duty("CON-02")
def test_page_views_of_a_person_who_allowed_analytics_are_written_in_bulk_after_the_response(
    visitor: Visitor, person, monkeypatch
):
    monkeypatch.setattr(browsing, "BATCH", 3)
    client = visitor("choose", analytics="on")
    for url in ("/", "/en/privacy/"):
        assert client.get(url).status_code == HTTPStatus.OK
    assert not PageView.objects.exists()
    assert browsing.waiting() == 2
    client.get("/downloads/?page=2")
    assert browsing.waiting() == 0  # the third made the batch due; written once the response went
    assert list(PageView.objects.order_by("id").values_list("person_id", "path")) == [
        (person.pk, "/"),
        (person.pk, "/en/privacy/"),
        (person.pk, "/downloads/"),  # without the query string
    ]


@pytest.mark.duty("CON-02")
@pytest.mark.duty("CON-05")
@pytest.mark.parametrize(
    ("action", "choice", "gpc"),
    [("", {}, False), ("reject_all", {}, False), ("choose", {"functional": "on"}, False), ("accept_all", {}, True)],
    ids=["no choice", "rejected", "functional only", "accepted but GPC"],
)
def test_without_analytics_consent_no_page_view_is_kept(visitor: Visitor, action, choice, gpc):
    client = visitor(action, gpc=gpc, **choice)
    for url in ("/", "/downloads/", "/en/contact/"):
        assert client.get(url).status_code == HTTPStatus.OK
    assert browsing.waiting() == 0
    browsing.flush()
    assert not PageView.objects.exists()


def test_console_api_errors_and_posts_are_not_page_views(visitor: Visitor):
    client = visitor("accept_all")
    client.get("/backoffice/login/")
    client.get("/api/openapi.json")
    client.get("/no/such/page/")
    client.post("/cookies/", {"action": "accept_all"}, HTTP_SEC_FETCH_SITE="same-origin")
    assert browsing.waiting() == 0


def test_recording_a_page_view_adds_no_statement_to_the_request(visitor: Visitor):
    client = visitor("accept_all")
    client.get("/downloads/")
    browsing.flush()
    with CaptureQueriesContext(connection) as anonymous:
        Client().get("/downloads/")
    with CaptureQueriesContext(connection) as recorded:
        client.get("/downloads/")
    assert browsing.waiting() == 1
    # The test's stand-in reads the Person (the accounts middleware will do so in any case).
    assert len(recorded) == len(anonymous) + 1


# --- the holder's view and clearing ------------------------------------------------------------


def fragment(template: str, person: Person | None) -> str:
    request = RequestFactory().get("/account/")
    request.visitor_person = person  # as the accounts middleware will
    with translation.override("zh-hans"):
        return render_to_string(template, request=request)


def test_the_account_fragments_show_the_holders_own_history(visitor: Visitor, person, resource, admin):
    client = visitor("accept_all")
    download(client, resource)
    client.get("/en/contact/")
    history = fragment("downloads/_history.html", person)
    assert resource.title_zh in history
    assert 'action="/downloads/history/clear/"' in history
    pages = fragment("downloads/_browsing.html", person)
    assert "/en/contact/" in pages
    assert 'action="/downloads/pages/clear/"' in pages
    other = Person.objects.exclude(pk=person.pk).first()
    assert other is None or "/en/contact/" not in fragment("downloads/_browsing.html", other)
    assert "暂无下载记录" in fragment("downloads/_history.html", None)


@pytest.mark.duty("CON-04")
@pytest.mark.duty("RGT-05")
def test_the_holder_clears_each_history_and_the_clearing_is_audited(visitor: Visitor, person, resource):
    client = visitor("accept_all")
    download(client, resource)
    client.get("/")
    browsing.flush()
    client.get("/en/")  # waiting in memory: dropped too, never written
    response = client.post("/downloads/history/clear/", {"next": "/en/downloads/"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/en/downloads/"
    assert not DownloadRecord.objects.exists()
    assert PageView.objects.count() == 1
    response = client.post("/downloads/pages/clear/", {"next": "https://evil.example/"})
    assert response["Location"] == "/downloads/"  # never another site
    assert not PageView.objects.exists()
    assert browsing.waiting() == 0
    browsing.flush()
    assert not PageView.objects.exists()
    events = AuditEvent.objects.filter(event_type="downloads.history_cleared", person=person).order_by("id")
    assert [(e.actor_kind, e.extra) for e in events] == [
        ("visitor", {"history": "downloads", "deleted": 1, "because": "cleared"}),
        ("visitor", {"history": "pages", "deleted": 1, "because": "cleared"}),
    ]


def test_clearing_needs_a_signed_in_person(client: Client, signed_in_middleware):
    assert client.post("/downloads/history/clear/").status_code == HTTPStatus.NOT_FOUND
    assert client.post("/downloads/pages/clear/").status_code == HTTPStatus.NOT_FOUND
    assert client.get("/downloads/pages/clear/").status_code == HTTPStatus.METHOD_NOT_ALLOWED


# --- the rights portal's copy and erasure --------------------------------------------------------


@pytest.mark.duty("RGT-02")
@pytest.mark.duty("RGT-05")
def test_both_histories_are_in_the_persons_copy_and_go_with_their_erasure(visitor: Visitor, person, resource):
    client = visitor("accept_all")
    download(client, resource)
    client.get("/en/privacy/")
    browsing.flush()
    exported: dict[str, list] = {}
    current = ""
    for item in export_person(person, load_declaration(), context="test.export"):
        if isinstance(item, Section):
            current = item.category
            exported[current] = []
        else:
            exported[current].append(dict(item))
    assert [r["title_zh"] for r in exported["download_history"]] == [resource.title_zh]
    assert [r["page"] for r in exported["browsing_history"]] == ["/en/privacy/"]
    erase_person(person, reason="The person asked for erasure (test).")
    assert not DownloadRecord.objects.exists()
    assert not PageView.objects.exists()


@pytest.mark.duty("RET-02")
def test_the_sweep_deletes_histories_past_their_declared_retention(visitor: Visitor, resource, time_machine):
    from piwarden.retention.sweep import sweep  # noqa: PLC0415

    time_machine.move_to("2026-01-01 12:00:00+08:00")
    client = visitor("accept_all")
    download(client, resource)
    client.get("/")
    browsing.flush()
    time_machine.move_to("2026-07-01 12:00:00+08:00")  # 181 days: page views past 180, downloads not past 365
    sweep()
    assert DownloadRecord.objects.count() == 1
    assert not PageView.objects.exists()
    time_machine.move_to("2027-01-02 12:00:00+08:00")
    sweep()
    assert not DownloadRecord.objects.exists()


@pytest.mark.duty("CON-04")
def test_refusing_a_category_later_deletes_the_history_it_covered(visitor: Visitor, person, resource):
    client = visitor("accept_all")
    download(client, resource)
    client.get("/")
    browsing.flush()
    client.get("/en/")  # waiting in memory
    response = client.post("/cookies/", {"action": "choose", "functional": "on"}, HTTP_SEC_FETCH_SITE="same-origin")
    assert response.status_code == HTTPStatus.SEE_OTHER
    assert DownloadRecord.objects.count() == 1  # functional still allowed: kept
    assert not PageView.objects.exists()
    assert browsing.waiting() == 0
    client.post("/cookies/delete/", {"confirm": "1"}, HTTP_SEC_FETCH_SITE="same-origin")
    assert not DownloadRecord.objects.exists()
    events = AuditEvent.objects.filter(event_type="downloads.history_cleared", person=person).order_by("id")
    assert [(e.extra["history"], e.extra["because"]) for e in events] == [
        ("pages", "refused"),
        ("downloads", "refused"),
    ]


# --- a restriction (PIPL 44) stops both histories, through the gate ------------------------------


@pytest.mark.duty("RGT-01")
def test_a_person_who_restricted_processing_gets_no_new_history(visitor: Visitor, person, resource):
    client = visitor("accept_all")
    download(client, resource)
    assert client.get("/").status_code == HTTPStatus.OK
    browsing.flush()
    before = (DownloadRecord.objects.count(), PageView.objects.count())
    assert before == (1, 1)
    restrict_processing(person, by=None, reference="RESTRICTED")
    download(client, resource)  # the file is still served
    assert client.get("/en/privacy/").status_code == HTTPStatus.OK
    browsing.flush()
    assert (DownloadRecord.objects.count(), PageView.objects.count()) == before
    refused = AuditEvent.objects.filter(event_type=EventType.PROCESSING_REFUSED, purpose="visitor_history")
    assert sorted(e.extra["category"] for e in refused) == ["browsing_history", "download_history"]
    # Lifted, the history is kept again (the cookie choice still allows it).
    lift_restriction(person, by=None, reason="The person asked for the restriction to end.")
    download(client, resource)
    assert client.get("/").status_code == HTTPStatus.OK
    browsing.flush()
    assert (DownloadRecord.objects.count(), PageView.objects.count()) == (2, 2)


@pytest.mark.duty("RGT-01")
def test_views_noted_before_a_restriction_are_not_written_after_it(visitor: Visitor, person):
    client = visitor("accept_all")
    assert client.get("/").status_code == HTTPStatus.OK
    assert browsing.waiting() == 1
    restrict_processing(person, by=None, reference="RESTRICTED")
    assert browsing.flush() == 0
    assert not PageView.objects.exists()


def browser_of(person: Person) -> Client:
    """Another signed-in person's browser, analytics allowed on /cookies/."""
    client = Client(HTTP_X_TEST_PERSON=str(person.pk))
    assert client.post("/cookies/", {"action": "accept_all"}, HTTP_SEC_FETCH_SITE="same-origin").status_code == 303
    return client


@pytest.mark.duty("RGT-01")
def test_one_flush_decides_for_everyone_waiting_in_one_transaction(visitor: Visitor, person):
    """Views of several people wait in one process; a restriction and an erasure come before the
    flush: the gate decides for each person in the one pass, their views alone are dropped and
    their refusals recorded, and the statements do not grow with the number of people."""
    with transaction.atomic():
        others = [find_or_create_person(email=f"visitor.{i}@example.com") for i in range(5)]
    restricted, erased = others[3], others[4]
    browsers = [visitor("accept_all"), *(browser_of(p) for p in others)]
    for client in browsers:
        assert client.get("/").status_code == HTTPStatus.OK
    restrict_processing(restricted, by=None, reference="RESTRICTED")
    erase_person(erased, reason="The person asked for erasure (test).")
    assert browsing.waiting() == 6
    with CaptureQueriesContext(connection) as flushed:
        assert browsing.flush() == 4
    statements = len(flushed)  # now: the next request empties Django's log of them
    written = set(PageView.objects.values_list("person_id", flat=True))
    assert written == {person.pk, *(p.pk for p in others[:3])}
    refused = AuditEvent.objects.filter(event_type=EventType.PROCESSING_REFUSED, purpose="visitor_history")
    assert sorted((e.person_id, e.extra["context"], e.extra["refusal"]) for e in refused) == sorted(
        [
            (restricted.pk, "downloads.page_views", "the person has restricted processing of their data"),
            (erased.pk, "downloads.page_views", "the person's data has been erased"),
        ]
    )
    # Fewer people, no refusal: the same reads and writes (the savepoint is there for refusals).
    for client in browsers[:2]:
        client.get("/en/privacy/")
    with CaptureQueriesContext(connection) as fewer:
        assert browsing.flush() == 2
    refusal_statements = (
        4  # the look-up of the same refusals since the choices, their INSERT, a savepoint and its release
    )
    assert statements == len(fewer) + refusal_statements
    assert len(fewer) == 4  # the people (locked), the views' INSERT, the gate's transaction (a savepoint in a test)


@pytest.mark.duty("RGT-01")
def test_a_restricted_persons_visits_leave_one_refusal_per_history_and_restriction(visitor: Visitor, person, resource):
    """The first refusal proves the restriction is honoured; one per download or per flush would
    log when the person came back (what the restriction stops), and name the file they took."""
    client = visitor("accept_all")
    restrict_processing(person, by=None, reference="RESTRICTED")
    for _ in range(3):
        download(client, resource)
        assert client.get("/").status_code == HTTPStatus.OK
        browsing.flush()
    refused = AuditEvent.objects.filter(event_type=EventType.PROCESSING_REFUSED, person=person)
    assert sorted((e.extra["category"], e.extra["context"]) for e in refused) == [
        ("browsing_history", "downloads.page_views"),
        ("download_history", "downloads.download"),
    ]
    assert all("resource" not in e.extra for e in refused)
    assert (DownloadRecord.objects.count(), PageView.objects.count()) == (0, 0)
    # A new restriction is a new choice: its first refusals are recorded again.
    lift_restriction(person, by=None, reason="The person asked for the restriction to end.")
    restrict_processing(person, by=None, reference="RESTRICTED-2")
    download(client, resource)
    download(client, resource)
    assert refused.all().count() == 3
