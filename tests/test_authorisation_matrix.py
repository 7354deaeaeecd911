"""The authorisation matrix: every URL of the project, for every kind of person who may ask for it.

Issue 8 §2.  ``MATRIX`` holds an entry for every URL pattern (found by walking Django's resolver,
the language-prefixed public site and the JSON API included): for each actor, what the answer
must be.  A URL without an entry fails :func:`test_every_url_has_an_entry`; an entry for a URL
that no longer exists fails it too, so the table never drifts from the URLs.

The actors are real: anonymous; two visitors (A and B), each holding a verified rights request
opened in their browser (the status page's signed cookie, as the portal sets it) and an API
token for it (as the API's ``open`` operation gives it); and one staff member for each role the
declaration declares, signed in with password and TOTP.  Each URL is asked for by each of them,
and the answer's status (and, for a redirect, where it leads) must be the table's.

Object level: the sales consultant asks for a consultation request assigned to them and for one
assigned to a colleague (404); visitor B asks the API for visitor A's request (404).

Adding a URL: add its name (``namespace:name``, or the route for an unnamed pattern) to
``MATRIX`` with one :class:`Case` or more.  ``staff(...)`` is a console page: anonymous and
visitors are sent to sign in, and each role answers what you pass (404 when left out: a role
that may not open a page is answered as if it were not there).  ``everyone(...)`` is a page that
answers all alike.  A URL with an object in it takes ``url=lambda w: ...`` built from
:class:`World`.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import LocalePrefixPattern
from django.utils import timezone, translation

from piwarden.accounts.actions import SignUp, sign_up, verify_email
from piwarden.accounts.models import Account
from piwarden.children.access import link_token
from piwarden.children.actions import confirm_guardian_consent, request_guardian_consent
from piwarden.downloads.actions import withdraw_resource
from piwarden.incidents.actions import publish_notice
from piwarden.inquiries.models import Inquiry
from piwarden.monitoring.models import Alert, Rule
from piwarden.people.actions import find_or_create_person
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.revisions.actions import ensure_published
from piwarden.rights.actions import RequestInput, send_follow_code, submit_request
from piwarden.rights.models import ActingAs, CodePurpose, RequestKind, VerificationCode
from piwarden.security.models import Refusal
from piwarden.staff.actions import open_access_review
from piwarden.vault.blind import email_index
from tests.conftest import consultation_data, make_staff, sign_in
from tests.downloads.conftest import publish
from tests.incidents.making import acting, an_incident, ready_to_notify

pytestmark = pytest.mark.django_db

VISITORS = ("anonymous", "visitor_a", "visitor_b")
ROLES = tuple(r.id for r in load_declaration().roles)
ACTORS = VISITORS + ROLES

# Outcomes: a status code, "login" (302 to the console's sign-in), or "→name" (302 to that URL).
Outcome = int | str
OK, BAD, UNAUTHORISED, FORBIDDEN, NOT_FOUND, NOT_ALLOWED, CONFLICT = 200, 400, 401, 403, 404, 405, 409
LOGIN = "login"
ACCOUNT_SIGN_IN, ACCOUNT_HOME = "→accounts:sign_in", "→accounts:account"


def everyone(outcome: Outcome, **overrides: Outcome) -> dict[str, Outcome]:
    """Every actor alike, but for ``overrides`` (actor → outcome)."""
    return {actor: overrides.get(actor, outcome) for actor in ACTORS}


def staff(**roles: Outcome) -> dict[str, Outcome]:
    """A console page: sign-in for anonymous and visitors; each role as given, 404 if not given."""
    unknown = set(roles) - set(ROLES)
    assert not unknown, f"not a declared role: {unknown}"
    return {**dict.fromkeys(VISITORS, LOGIN), **{r: roles.get(r, NOT_FOUND) for r in ROLES}}


def every_role(outcome: Outcome) -> dict[str, Outcome]:
    return staff(**dict.fromkeys(ROLES, outcome))


@dataclass
class World:
    """The objects the URLs name, made once for the matrix."""

    own_inquiry: str = ""  # a consultation request assigned to the sales consultant
    others_inquiry: str = ""  # one assigned to another sales consultant
    rights_a: str = ""  # visitor A's rights request (reference)
    rights_b: str = ""
    alert: int = 0  # a monitoring alert (its id)
    colleague: int = 0  # a staff account (its id), for the administrator's staff page
    review: int = 0  # an open access review (its id)
    incident: str = ""  # an incident whose public notice is published (its slug)
    unpublished: str = ""  # an incident just recorded (its slug)
    child_inquiry: str = ""  # a child's request (a guardian consented), assigned to the sales consultant
    child_person: str = ""  # its person's reference (the audit log's filter)
    guardian_link: str = ""  # the token of an open request for a guardian's consent
    refusal: str = ""  # a refusal by a risk rule (its reference)
    resource: str = ""  # a published downloadable resource (its id)
    withdrawn: str = ""  # a withdrawn one


@dataclass(frozen=True)
class Case:
    expect: Mapping[str, Outcome]
    url: Callable[[World], str] | None = None  # None: reverse(name) without arguments
    method: str = "get"
    data: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


def _incident(name: str, attr: str = "incident") -> Callable[[World], str]:
    return lambda w: reverse(name, args=[getattr(w, attr)])


def _rights(attr: str) -> Callable[[World], str]:
    return lambda w: reverse("backoffice:rights_request", args=[getattr(w, attr)])


MATRIX: dict[str, list[Case]] = {
    # --- the public site (Chinese at /, English at /en/: both are asked) -------------------------
    "site:home": [Case(everyone(OK))],
    "site:privacy": [Case(everyone(OK))],
    "site:contact": [Case(everyone(OK))],
    "site:consultation": [Case(everyone(OK))],
    # The page after a submission, for the browser that submitted (none did here).
    "site:consultation_received": [Case(everyone(NOT_FOUND))],
    "site:rights": [Case(everyone(OK))],
    "site:rights_verify": [Case(everyone(OK))],
    "site:rights_status": [Case(everyone(OK))],
    "site:rights_status_code": [Case(everyone(OK))],
    # The request opened in this browser (the signed cookie): its requester only.
    "site:rights_received": [Case(everyone("→site:rights_status", visitor_a=OK, visitor_b=OK))],
    "site:rights_status_view": [Case(everyone("→site:rights_status", visitor_a=OK, visitor_b=OK))],
    "site:rights_archive": [Case(everyone("→site:rights_status", visitor_a=OK, visitor_b=OK))],
    # No archive was prepared for these requests: nothing to download, for the requester either.
    "site:rights_archive_download": [Case(everyone("→site:rights_status", visitor_a=NOT_FOUND, visitor_b=NOT_FOUND))],
    # The cookie choices (issue 9 §5): public; a choice posted with no button is bad input.
    "site:cookies": [Case(everyone(OK)), Case(everyone(BAD), method="post", note="no button")],
    "site:cookies_delete": [Case(everyone(NOT_ALLOWED))],  # POST only
    # --- visitor accounts (issue 9 §1): visitor A holds one and is signed in; B has none; staff
    # sessions are no visitor's (a staff member signed in to the console is sent to sign in here).
    "accounts:account": [Case(everyone(ACCOUNT_SIGN_IN, visitor_a=OK))],
    "accounts:sign_up": [Case(everyone(OK)), Case(everyone(BAD), method="post", note="empty form")],
    "accounts:sign_up_sent": [Case(everyone(OK))],
    "accounts:verify": [Case(everyone(NOT_FOUND), note="no token")],
    "accounts:sign_in": [
        Case(everyone(OK, visitor_a=ACCOUNT_HOME)),
        Case(everyone(BAD), method="post", note="empty form"),
    ],
    "accounts:code": [Case(everyone(ACCOUNT_SIGN_IN))],
    "accounts:sign_out": [Case(everyone(NOT_ALLOWED))],  # POST only
    "accounts:password": [
        Case(everyone(ACCOUNT_SIGN_IN, visitor_a=OK)),
        Case(everyone(ACCOUNT_SIGN_IN, visitor_a=BAD), method="post", note="empty form"),
    ],
    "accounts:reset": [Case(everyone(OK)), Case(everyone(BAD), method="post", note="empty form")],
    "accounts:reset_sent": [Case(everyone(OK))],
    "accounts:reset_new": [Case(everyone(NOT_FOUND), note="no token")],
    "accounts:totp": [Case(everyone(ACCOUNT_SIGN_IN, visitor_a=OK))],
    "accounts:totp_remove": [Case(everyone(NOT_ALLOWED))],  # POST only
    "accounts:cancel": [
        Case(everyone(ACCOUNT_SIGN_IN, visitor_a=OK)),
        Case(everyone(ACCOUNT_SIGN_IN, visitor_a=BAD), method="post", note="empty form: nothing deleted"),
    ],
    "accounts:cancelled": [Case(everyone(OK))],
    # incidents: the public notice of an incident, once published; before, it does not exist.
    "site:incident_notice": [
        Case(everyone(OK), url=_incident("site:incident_notice")),
        Case(everyone(NOT_FOUND), url=_incident("site:incident_notice", "unpublished"), note="not published"),
    ],
    # Children (policy §八): the guardian's page, reached through the e-mailed link; any holder of the link.
    "site:guardian": [
        Case(everyone(NOT_FOUND), url=lambda w: reverse("site:guardian", args=["nosuchlink"]), note="never issued"),
        Case(everyone(OK), url=lambda w: reverse("site:guardian", args=[w.guardian_link]), note="an open link"),
        Case(
            everyone(BAD),
            url=lambda w: reverse("site:guardian", args=[w.guardian_link]),
            method="post",
            note="an open link, no decision",
        ),
    ],
    # A refusal's review (issue 9 §6): the form for everyone; its state for whoever holds the reference.
    "site:security_review": [
        Case(everyone(OK)),
        Case(everyone(OK), url=lambda w: f"{reverse('site:security_review')}?ref={w.refusal}", note="the reference"),
        Case(everyone(BAD), method="post", note="an empty form"),
    ],
    # The policy's versions (issue 10 §3): public; version 1 is published, no other exists.
    "site:privacy_versions": [Case(everyone(OK))],
    "site:privacy_version": [
        Case(everyone(OK), url=lambda w: reverse("site:privacy_version", args=[1])),
        Case(everyone(NOT_FOUND), url=lambda w: reverse("site:privacy_version", args=[2]), note="not published"),
    ],
    # Closing a material change's notice: POST only; version 1 made none, so there is nothing to close.
    "site:policy_notice_dismiss": [
        Case(everyone(NOT_ALLOWED)),
        Case(everyone(BAD), method="post", data={"version": "1"}, note="not a material version"),
    ],
    # The downloads library (issue 9 §3): anyone downloads a published resource; a withdrawn one is gone.
    "downloads:list": [Case(everyone(OK))],
    "downloads:file": [
        Case(everyone(OK), url=lambda w: reverse("downloads:file", args=[w.resource])),
        Case(everyone(NOT_FOUND), url=lambda w: reverse("downloads:file", args=[w.withdrawn]), note="withdrawn"),
        Case(everyone(NOT_ALLOWED), url=lambda w: reverse("downloads:file", args=[w.resource]), method="post"),
    ],
    # The holder clears their own history (POST): visitor A, signed in to an account; nobody else has one.
    "downloads:clear_downloads": [
        Case(everyone(NOT_ALLOWED)),
        Case(everyone(NOT_FOUND, visitor_a="→downloads:list"), method="post"),
    ],
    "downloads:clear_pages": [
        Case(everyone(NOT_ALLOWED)),
        Case(everyone(NOT_FOUND, visitor_a="→downloads:list"), method="post"),
    ],
    # --- the CAPTCHA (no key that exists: nothing to draw) ---------------------------------------
    "captcha-image": [Case(everyone(NOT_FOUND), url=lambda w: "/captcha/image/nosuchkey/")],
    "captcha-image-2x": [Case(everyone(NOT_FOUND), url=lambda w: "/captcha/image/nosuchkey@2/")],
    "captcha-audio": [Case(everyone(NOT_FOUND), url=lambda w: "/captcha/audio/nosuchkey.wav")],
    "captcha-refresh": [Case(everyone(NOT_FOUND))],
    # --- the JSON API ------------------------------------------------------------------------------
    "api:api-root": [Case(everyone(NOT_FOUND))],
    "api:openapi-json": [Case(everyone(OK))],
    "api:submit": [Case(everyone(NOT_ALLOWED))],
    "api:verify": [Case(everyone(NOT_ALLOWED), url=lambda w: f"/api/rights/requests/{w.rights_a}/verify")],
    "api:follow_code": [Case(everyone(NOT_ALLOWED), url=lambda w: f"/api/rights/requests/{w.rights_a}/follow-code")],
    "api:open_request": [Case(everyone(NOT_ALLOWED), url=lambda w: f"/api/rights/requests/{w.rights_a}/open")],
    # Visitor A's request: A's token opens it, B's token answers 404, no token 401.
    "api:status": [
        Case(
            everyone(UNAUTHORISED, visitor_a=OK, visitor_b=NOT_FOUND),
            url=lambda w: f"/api/rights/requests/{w.rights_a}",
        )
    ],
    # Visitor A's request has no archive (not a completed access or copy request): 404 to A too.
    "api:archive": [
        Case(
            everyone(UNAUTHORISED, visitor_a=NOT_FOUND, visitor_b=NOT_FOUND),
            url=lambda w: f"/api/rights/requests/{w.rights_a}/archive",
        )
    ],
    "api/<path:rest>": [Case(everyone(NOT_FOUND), url=lambda w: "/api/no/such/thing")],
    # --- the staff console --------------------------------------------------------------------------
    "backoffice:login": [Case(everyone(OK))],
    "backoffice:logout": [Case(everyone(NOT_ALLOWED))],  # POST only (a GET signs nobody out)
    "backoffice:preferences": [Case(every_role(OK))],
    # Every role has the inbox page; a role without consultation requests is told so on it.
    "backoffice:inbox": [Case(every_role(OK))],
    "backoffice:inquiry": [
        Case(
            staff(sales=OK, privacy_officer=OK),
            url=lambda w: reverse("backoffice:inquiry", args=[w.own_inquiry]),
            note="assigned to the sales consultant",
        ),
        Case(
            staff(privacy_officer=OK),
            url=lambda w: reverse("backoffice:inquiry", args=[w.others_inquiry]),
            note="assigned to another sales consultant",
        ),
        Case(staff(), url=lambda w: reverse("backoffice:inquiry", args=["ZZZZZZZZZZ"]), note="no such request"),
        # A child's request: only the role granted children's data opens it, even when assigned to sales.
        Case(
            staff(privacy_officer=OK),
            url=lambda w: reverse("backoffice:inquiry", args=[w.child_inquiry]),
            note="a child's request assigned to the sales consultant",
        ),
        # A reveal posted with nothing chosen: refused as bad input where the page opens at all.
        Case(
            staff(sales=BAD, privacy_officer=BAD),
            url=lambda w: reverse("backoffice:inquiry", args=[w.own_inquiry]),
            method="post",
            note="empty reveal, own request",
        ),
        Case(
            staff(privacy_officer=BAD),
            url=lambda w: reverse("backoffice:inquiry", args=[w.others_inquiry]),
            method="post",
            note="empty reveal, another's request",
        ),
    ],
    # POST only (the assignment's own tests post: tests/inquiries/test_assignment.py).
    "backoffice:inquiry_assign": [
        Case(every_role(NOT_ALLOWED), url=lambda w: reverse("backoffice:inquiry_assign", args=[w.own_inquiry])),
        # Posted with no assignee: sales may open their own request but not assign it (403).
        Case(
            staff(sales=FORBIDDEN, privacy_officer=BAD),
            url=lambda w: reverse("backoffice:inquiry_assign", args=[w.own_inquiry]),
            method="post",
            note="no assignee, own request",
        ),
        Case(
            staff(privacy_officer=BAD),
            url=lambda w: reverse("backoffice:inquiry_assign", args=[w.others_inquiry]),
            method="post",
            note="no assignee, another's request",
        ),
    ],
    # POST only: ask for an approval ticket to reveal a child's request (tests/children/test_access.py).
    "backoffice:inquiry_child_ticket": [
        Case(every_role(NOT_ALLOWED), url=lambda w: reverse("backoffice:inquiry_child_ticket", args=[w.child_inquiry])),
        Case(
            staff(privacy_officer=BAD),
            url=lambda w: reverse("backoffice:inquiry_child_ticket", args=[w.child_inquiry]),
            method="post",
            note="nothing posted, a child's request",
        ),
        Case(
            staff(),
            url=lambda w: reverse("backoffice:inquiry_child_ticket", args=[w.own_inquiry]),
            method="post",
            note="not a child's request",
        ),
    ],
    # POST only: flag a request as a child's without a guardian's consent (tests/children/test_flag.py).
    "backoffice:inquiry_flag_child": [
        Case(every_role(NOT_ALLOWED), url=lambda w: reverse("backoffice:inquiry_flag_child", args=[w.own_inquiry])),
        Case(
            staff(sales=BAD, privacy_officer=BAD),
            url=lambda w: reverse("backoffice:inquiry_flag_child", args=[w.own_inquiry]),
            method="post",
            note="not confirmed, own request",
        ),
        Case(
            staff(privacy_officer=BAD),
            url=lambda w: reverse("backoffice:inquiry_flag_child", args=[w.others_inquiry]),
            method="post",
            note="not confirmed, another's request",
        ),
        Case(
            staff(privacy_officer=CONFLICT),
            url=lambda w: reverse("backoffice:inquiry_flag_child", args=[w.child_inquiry]),
            method="post",
            data={"confirm": "yes"},
            note="a child's request a guardian consented to: hidden from sales, not flagged",
        ),
    ],
    "backoffice:audit": [Case(staff(privacy_officer=OK, auditor=OK))],
    # The log holds entries about a child's request: not exported in bulk (CHD-03), only per person.
    "backoffice:audit_export": [
        Case(staff(privacy_officer=FORBIDDEN, auditor=FORBIDDEN), note="every entry: some about a child"),
        Case(
            staff(privacy_officer=OK, auditor=OK),
            url=lambda w: reverse("backoffice:audit_export") + f"?person={w.child_person}",
            note="narrowed to the one child",
        ),
    ],
    "backoffice:rights_queue": [Case(staff(privacy_officer=OK))],
    "backoffice:rights_request": [
        Case(staff(privacy_officer=OK), url=_rights("rights_a")),
        Case(staff(privacy_officer=BAD), url=_rights("rights_a"), method="post", data={"action": "none"}),
    ],
    "backoffice:promises": [Case(staff(privacy_officer=OK))],
    "backoffice:alerts": [Case(staff(auditor=OK))],
    "backoffice:alert": [
        Case(staff(auditor=OK), url=lambda w: reverse("backoffice:alert", args=[w.alert])),
        # Acknowledged without a note: refused as bad input where the page opens at all.
        Case(staff(auditor=BAD), url=lambda w: reverse("backoffice:alert", args=[w.alert]), method="post"),
        Case(staff(), url=lambda w: reverse("backoffice:alert", args=[w.alert + 1000]), note="no such alert"),
    ],
    "backoffice:security_events": [Case(staff(auditor=OK))],
    # Refusals by the risk rules and their review (issue 9 §6): the security role's.
    "backoffice:refusals": [
        Case(staff(auditor=OK)),
        Case(staff(auditor=OK), url=lambda w: "/backoffice/refusals/?awaiting=1"),
    ],
    "backoffice:refusal": [
        Case(staff(auditor=OK), url=lambda w: reverse("backoffice:refusal", args=[w.refusal])),
        # Decided with nothing chosen: bad input for the security role; another role may not decide (404).
        Case(staff(auditor=BAD), url=lambda w: reverse("backoffice:refusal", args=[w.refusal]), method="post"),
        Case(staff(), url=lambda w: reverse("backoffice:refusal", args=["ZZZZZZZZZZ"]), note="no such refusal"),
    ],
    # The administrator's staff page and the time-limited grants (issue 8 §2).
    "backoffice:staff": [
        Case(staff(admin=OK)),
        Case(staff(admin=BAD), method="post", note="an empty new account"),
    ],
    "backoffice:staff_change": [
        Case(every_role(NOT_ALLOWED), url=lambda w: reverse("backoffice:staff_change", args=[w.colleague])),
        Case(
            staff(admin=BAD),
            url=lambda w: reverse("backoffice:staff_change", args=[w.colleague]),
            method="post",
            note="no action",
        ),
    ],
    "backoffice:grants": [
        Case(staff(admin=OK, privacy_officer=OK)),
        Case(staff(admin=BAD), method="post", note="an empty request for a grant"),
    ],
    "backoffice:grant_decide": [
        Case(every_role(NOT_ALLOWED), url=lambda w: reverse("backoffice:grant_decide", args=[999_999])),
        # No action: refused as bad input for the roles that open the grants page at all.
        Case(
            staff(admin=BAD, privacy_officer=BAD),
            url=lambda w: reverse("backoffice:grant_decide", args=[999_999]),
            method="post",
            note="no action",
        ),
        Case(
            staff(),
            url=lambda w: reverse("backoffice:grant_decide", args=[999_999]),
            method="post",
            data={"action": "approve"},
            note="no such grant; only the privacy officer approves at all",
        ),
    ],
    # Access reviews and training (issue 8 §3, §4): the privacy officer's.
    "backoffice:access_reviews": [Case(staff(privacy_officer=OK))],
    "backoffice:access_review": [
        Case(staff(privacy_officer=OK), url=lambda w: reverse("backoffice:access_review", args=[w.review]))
    ],
    # Not signed yet (the review is open): nothing to download, for the privacy officer either.
    "backoffice:access_review_export": [
        Case(staff(), url=lambda w: reverse("backoffice:access_review_export", args=[w.review]))
    ],
    "backoffice:training": [Case(staff(privacy_officer=OK))],
    # The incident register (issue 10 §4): the privacy officer's and the security auditor's.
    "backoffice:incidents": [
        Case(staff(privacy_officer=OK, auditor=OK)),
        Case(staff(privacy_officer=BAD, auditor=BAD), method="post", note="an empty incident"),
    ],
    "backoffice:incident": [
        Case(staff(privacy_officer=OK, auditor=OK), url=_incident("backoffice:incident")),
        Case(
            staff(privacy_officer=BAD, auditor=BAD),
            url=_incident("backoffice:incident"),
            method="post",
            note="no step",
        ),
        Case(staff(), url=lambda w: reverse("backoffice:incident", args=["nosuch"]), note="no such incident"),
    ],
    "backoffice:incident_report": [
        Case(staff(privacy_officer=OK, auditor=OK), url=_incident("backoffice:incident_report")),
        Case(
            staff(privacy_officer=BAD, auditor=BAD),
            url=_incident("backoffice:incident_report", "unpublished"),
            method="post",
            note="an empty report",
        ),
    ],
    "backoffice:incident_report_print": [
        Case(staff(privacy_officer=OK, auditor=OK), url=_incident("backoffice:incident_report_print"))
    ],
    "backoffice:incident_report_export": [
        Case(staff(privacy_officer=OK, auditor=OK), url=_incident("backoffice:incident_report_export"))
    ],
    "backoffice:incident_notice": [
        Case(staff(privacy_officer=OK, auditor=OK), url=_incident("backoffice:incident_notice")),
        Case(
            staff(privacy_officer=BAD, auditor=BAD),
            url=_incident("backoffice:incident_notice"),
            method="post",
            note="no step",
        ),
    ],
    # Legal holds (issue 10 §1): the privacy officer's.
    "backoffice:holds": [
        Case(staff(privacy_officer=OK)),
        Case(staff(privacy_officer=BAD), method="post", data={"reason": "short"}, note="invalid: nothing placed"),
    ],
    "backoffice:hold_lift": [
        Case(
            staff(privacy_officer=BAD),
            url=lambda w: reverse("backoffice:hold_lift", args=[999_999]),
            method="post",
            data={"reason": "Court order lifted"},
            note="no such hold",
        ),
        Case(
            everyone(NOT_ALLOWED, **dict.fromkeys(VISITORS, LOGIN)),
            url=lambda w: reverse("backoffice:hold_lift", args=[999_999]),
            note="lifting is a POST",
        ),
    ],
    # The downloads library in the console: the administrator's (MANAGE_DOWNLOADS).
    "backoffice:downloads": [
        Case(staff(admin=OK)),
        Case(staff(admin=BAD), method="post", note="an empty upload"),
    ],
    "backoffice:download_edit": [
        Case(staff(admin=OK), url=lambda w: reverse("backoffice:download_edit", args=[w.resource])),
        Case(
            staff(admin=BAD),
            url=lambda w: reverse("backoffice:download_edit", args=[w.resource]),
            method="post",
            note="no action",
        ),
        Case(staff(), url=lambda w: reverse("backoffice:download_edit", args=[uuid.uuid4()]), note="no such resource"),
    ],
    # A link that was never issued: nothing to enrol, whoever follows it.
    "backoffice:enrol": [Case(everyone(NOT_FOUND), url=lambda w: reverse("backoffice:enrol", args=["MQ", "x-y"]))],
}


# --- the URLs of the project ------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    key: str  # the name with its namespaces, or the route of an unnamed pattern
    localised: bool  # under i18n_patterns: served at / (Chinese) and /en/ (English)


def routes() -> Iterator[Route]:
    """Every URL pattern, walking the resolver through every include (namespaces, language prefix)."""

    def walk(patterns: list[URLPattern | URLResolver], prefix: str, namespace: str, localised: bool) -> Iterator[Route]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                under_language = localised or isinstance(pattern.pattern, LocalePrefixPattern)
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner, under_language)
            else:
                route = prefix + str(pattern.pattern)
                yield Route(f"{namespace}{pattern.name}" if pattern.name else route, localised)

    yield from walk(get_resolver().url_patterns, "", "", localised=False)


def test_every_url_has_an_entry():
    found = {r.key for r in routes()}
    assert len(found) > 30  # the walk found the project's URLs, not an empty list
    assert {"site:home", "api:status", "backoffice:inbox"} <= found
    assert sorted(found - set(MATRIX)) == [], "URLs without an entry in MATRIX"
    assert sorted(set(MATRIX) - found) == [], "entries in MATRIX for URLs that no longer exist"


def test_every_entry_names_every_actor():
    """A new role in the declaration needs its column: every case must say what each actor gets."""
    for key, cases in MATRIX.items():
        assert cases, key
        for case in cases:
            assert set(case.expect) == set(ACTORS), (key, case.note, set(ACTORS) ^ set(case.expect))


# --- the actors -------------------------------------------------------------------------------


def _account_holder(client: Client, email: str) -> None:
    """Visitor A also holds a confirmed account, signed in in the same browser."""
    password = "matrix account password 42"  # a test password
    sign_up(SignUp(email, "", datetime.date(1990, 5, 17), "", password, "zh-hans"))
    verify_email(Account.objects.get(email_index=email_index(email)))
    response = client.post(reverse("accounts:sign_in"), {"email": email, "password": password})
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:500]


def _visitor(email: str, settings: Any) -> tuple[Client, str]:
    """A person with a verified rights request, opened in their browser and with an API token."""
    request = submit_request(
        RequestInput(kind=RequestKind.ACCESS, email=email, details="", acting_as=ActingAs.SELF, language="zh-hans")
    )
    client = Client()
    code = VerificationCode.objects.filter(request=request, purpose=CodePurpose.VERIFY).latest("created_at")
    response = client.post(reverse("site:rights_verify"), {"reference": request.reference, "code": code.sealed_code})
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:500]  # the portal's cookie is set
    send_follow_code(request.reference, email)
    code = VerificationCode.objects.filter(request=request, purpose=CodePurpose.FOLLOW).latest("created_at")
    response = client.post(
        f"/api/rights/requests/{request.reference}/open", json.dumps({"code": code.sealed_code}), "application/json"
    )
    assert response.status_code == HTTPStatus.OK, response.content.decode()[:500]
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {response.json()['token']}"
    return client, request.reference


def _person_with_address(sealed: dict[str, str]) -> Person:
    """The guardian's consent's hook: the child is the person of the consultation request."""
    return find_or_create_person(email=sealed["email"])


@pytest.fixture
def world(settings: Any, tmp_path: Path, assign: Any) -> tuple[World, dict[str, Client]]:
    settings.PIWARDEN_RIGHTS_RATE = settings.PIWARDEN_API_RATE = "1000000/m"  # not the subject here
    settings.PIWARDEN_RIGHTS_MAIL_RATE = "1000000/h"
    settings.PIWARDEN_SIGN_UP_RATE = settings.PIWARDEN_SIGN_IN_RATE = settings.PIWARDEN_SIGN_IN_PAIR_RATE = "1000000/m"
    settings.PIWARDEN_SIGN_IN_ACCOUNT_RATE = settings.PIWARDEN_ACCOUNT_MAIL_RATE = "1000000/m"
    settings.PIWARDEN_DOWNLOADS_DIR = tmp_path / "downloads"
    clients: dict[str, Client] = {"anonymous": Client()}
    made = World()
    clients["visitor_a"], made.rights_a = _visitor("visitor.a@example.com", settings)
    _account_holder(clients["visitor_a"], "visitor.a@example.com")
    clients["visitor_b"], made.rights_b = _visitor("visitor.b@example.com", settings)
    users: dict[str, User] = {}
    for role in ROLES:
        users[role] = make_staff(f"matrix-{role}", role, tmp_path)
        clients[role] = Client()
        assert sign_in(clients[role], users[role]).status_code == HTTPStatus.FOUND
    colleague = make_staff("matrix-sales-colleague", "sales", tmp_path)
    for tag in ("own", "other", "child"):
        data = consultation_data(email=f"{tag}@example.com", name=f"Matrix {tag}")
        assert Client().post("/consultation/", data).status_code == HTTPStatus.FOUND
    own, other, child = Inquiry.objects.order_by("submitted_at", "id")
    assign(own.reference, users["sales"])
    assign(other.reference, colleague)
    assign(child.reference, users["sales"])
    made.own_inquiry, made.others_inquiry, made.child_inquiry = own.reference, other.reference, child.reference
    made.child_person = child.person.reference
    # The child's guardian consented (through the link); a second child's request is still open.
    consented = request_guardian_consent(
        {"email": "child@example.com"}, "guardian.child@example.com", "zh-hans", on_consent=_person_with_address
    )
    confirm_guardian_consent(link_token(consented), shown_text="I consent (matrix)", language="zh-hans")
    pending = request_guardian_consent(
        {"email": "pending.child@example.com"}, "guardian.pending@example.com", "en", on_consent=_person_with_address
    )
    made.guardian_link = link_token(pending)
    made.colleague = colleague.pk
    made.review = open_access_review().pk
    settings.PIWARDEN_RIGHTS_RATE = "1/d"  # one refusal by the rate limit, for its pages
    refused = Client(REMOTE_ADDR="198.51.100.200")
    for _ in range(2):
        refused.post(reverse("site:rights_status"), {"reference": "ABCDEFGHJK", "email": "x@example.com"})
    made.refusal = Refusal.objects.get().reference
    settings.PIWARDEN_RIGHTS_RATE = "1000000/m"
    ensure_published()  # version 1 of the policy, as `piwarden serve` keeps it
    made.resource = str(publish(users["admin"]).pk)
    withdrawn = publish(users["admin"], filename="old.pdf")
    withdraw_resource(withdrawn, by=users["admin"])
    made.withdrawn = str(withdrawn.pk)
    now = timezone.now()
    made.alert = Alert.objects.create(
        rule=Rule.values[0],
        staff=colleague,
        events=31,
        threshold=30,
        window_minutes=10,
        first_seq=1,
        last_seq=31,
        first_at=now,
        last_at=now,
        raised_at=now,
    ).pk
    officer = acting(users["privacy_officer"])
    made.incident = ready_to_notify(officer).slug
    publish_notice(officer, made.incident)
    made.unpublished = an_incident(officer).slug
    return made, clients


def outcome_of(response: Any, language: str) -> Outcome:
    if response.status_code != HTTPStatus.FOUND:
        return int(response.status_code)
    target = urlsplit(response["Location"]).path
    if target == reverse("backoffice:login"):
        return LOGIN
    names = (
        "site:rights_status",
        "site:consultation",
        "site:home",
        "accounts:sign_in",
        "accounts:account",
        "downloads:list",
    )
    for name in names:
        with translation.override(language):
            if target == reverse(name):
                return f"→{name}"
    return f"→{target}"


def test_each_actor_gets_what_the_matrix_says(world: tuple[World, dict[str, Client]]) -> None:
    made, clients = world
    localised = {r.key for r in routes() if r.localised}
    wrong: list[str] = []
    asked = 0
    for key, cases in MATRIX.items():
        for case in cases:
            for language in ("zh-hans", "en") if key in localised else ("zh-hans",):
                with translation.override(language):
                    url = case.url(made) if case.url else reverse(key)
                for actor in ACTORS:
                    response = getattr(clients[actor], case.method)(url, case.data)
                    asked += 1
                    got = outcome_of(response, language)
                    if got != case.expect[actor]:
                        wrong.append(
                            f"{key} {case.note} {case.method.upper()} {url} as {actor}: {got}, not {case.expect[actor]}"
                        )
    assert not wrong, "\n".join(wrong)
    assert asked > 250  # every URL, every actor (the public site twice)
