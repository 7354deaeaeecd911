"""Incidents made through the register's write paths, for the tests that need one at a given step."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from piwarden.incidents import actions
from piwarden.incidents.actions import Details
from piwarden.incidents.models import Grade, Incident, Kind

REPORT = {
    "authority": "北京市互联网信息办公室",
    "place": "Web servers of the consultation form",
    "impact": "Consultation records readable by an outside party",
    "measures_effect": "The server was isolated; the leak stopped",
    "trend": "No further access seen",
    "cause_analysis": "An unpatched library",
    "tracing": "Logs kept",
    "further_measures": "Patch all servers",
    "support": "",
    "preservation": "Disk images taken",
}
TEXTS = {
    "cause": {"zh-hans": "服务器组件存在未修复的漏洞。", "en": "An unpatched component of a server."},
    "harm": {"zh-hans": "您的联系方式可能被他人获取。", "en": "Your contact details may have been read by others."},
    "remedies": {"zh-hans": "我们已隔离服务器并修复漏洞。", "en": "We isolated the server and fixed the flaw."},
    "advice": {"zh-hans": "请警惕冒充我们的电话和邮件。", "en": "Beware of calls and e-mails pretending to be us."},
}


def acting(user: User) -> User:
    """The staff member as a verified session has them (django-otp's ``is_verified``)."""
    user.is_verified = lambda: True  # type: ignore[attr-defined]  # as django-otp marks a verified session
    return user


def details(**overrides: Any) -> Details:
    values: dict[str, Any] = {
        "title": "Consultation database exposed",
        "kind": Kind.LEAK,
        "grade": Grade.RELATIVELY_MAJOR,
        "cii": False,
        "detected_at": timezone.now() - datetime.timedelta(minutes=10),
        "categories": ("consultation",),
        "affected_persons": 2,
        "minors_affected": 0,
        "cause": "A misconfigured server",
        "measures": "",
    }
    values.update(overrides)
    return Details(**values)


def an_incident(by: User, **overrides: Any) -> Incident:
    return actions.record_incident(acting(by), details(**overrides))


def ready_to_notify(by: User, **overrides: Any) -> Incident:
    """An incident with its plan activated, contained, reported and its notice written."""
    incident = an_incident(by, **overrides)
    actions.activate_plan(by, incident.slug)
    actions.contain_incident(by, incident.slug)
    actions.report_incident(by, incident.slug, REPORT, authority_requires_notice=False)
    return actions.save_notice(by, incident.slug, TEXTS)
