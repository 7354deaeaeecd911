"""``{% load downloads %}``: the signed-in person's histories, for the fragments the account page includes."""

from __future__ import annotations

from typing import Any

from django import template

from piwarden.downloads import access
from piwarden.downloads.visitors import signed_in_person

register = template.Library()


@register.simple_tag(takes_context=True)
def download_history(context: dict[str, Any]) -> list[Any]:
    person = signed_in_person(context["request"])
    return access.download_history(person) if person is not None else []


@register.simple_tag(takes_context=True)
def browsing_history(context: dict[str, Any]) -> list[Any]:
    person = signed_in_person(context["request"])
    return access.browsing_history(person) if person is not None else []
