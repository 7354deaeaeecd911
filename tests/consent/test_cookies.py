"""What the choice cookie allows: the question code that would set a non-essential cookie asks."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from piwarden.consent.cookies import COOKIE_NAME, CookieChoice, allows, banner_needed, set_choice_cookie
from piwarden.policy.declaration import load_declaration
from tests.policy.test_declaration import edited


def request_with(choice: CookieChoice | None, **headers: str):
    request = RequestFactory().get("/", headers=headers)
    if choice is not None:
        response = HttpResponse()
        set_choice_cookie(response, choice)
        request.COOKIES[COOKIE_NAME] = response.cookies[COOKIE_NAME].value
    return request


def current(functional: bool, analytics: bool) -> CookieChoice:
    return CookieChoice("0123456789abcdef0123456789abcdef", load_declaration().cookies_version, functional, analytics)


@pytest.mark.duty("CON-02")
def test_nothing_is_allowed_before_a_choice():
    request = request_with(None)
    assert banner_needed(request)
    assert not allows(request, "functional")
    assert not allows(request, "analytics")


@pytest.mark.duty("CON-02")
@pytest.mark.parametrize(("functional", "analytics"), [(True, True), (True, False), (False, True), (False, False)])
def test_each_category_is_allowed_only_as_chosen(functional, analytics):
    request = request_with(current(functional, analytics))
    assert not banner_needed(request)
    assert allows(request, "functional") is functional
    assert allows(request, "analytics") is analytics


@pytest.mark.duty("CON-05")
@pytest.mark.duty("INT-05")
def test_gpc_refuses_analytics_even_when_the_cookie_allowed_it():
    request = request_with(current(True, True), **{"Sec-GPC": "1"})
    assert allows(request, "functional")
    assert not allows(request, "analytics")


@pytest.mark.duty("CON-03")
def test_a_choice_under_another_cookie_declaration_allows_nothing(declared):
    choice = current(True, True)
    declared(edited(('name = "sessionid"', 'name = "staff_session"')))
    assert load_declaration().cookies_version != choice.version
    request = request_with(choice)
    assert banner_needed(request)
    assert not allows(request, "functional")
    assert not allows(request, "analytics")
