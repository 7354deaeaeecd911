"""The incident register through the staff console, as the privacy officer uses it: forms posted
over HTTP by a staff member signed in with password and TOTP, the worker's tasks run as it would."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.tasks import TaskResultStatus
from django.test import Client
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

from piwarden.incidents.forms import NOTICE_PARTS
from tests.conftest import consultation_data
from tests.incidents.making import REPORT, TEXTS

REGISTER = "/backoffice/incidents/"


def page(slug: str, rest: str = "") -> str:
    return f"{REGISTER}{slug}/{rest}"


def incident_form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "Consultation database exposed",
        "kind": "leak",
        "grade": "relatively_major",
        "detected_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "categories": ["consultation"],
        "affected_persons": "3",
        "minors_affected": "0",
        "cause": "A misconfigured server",
        "measures": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def notice_form() -> dict[str, str]:
    data = {"action": "save"}
    for part in NOTICE_PARTS:
        data[f"{part}_zh"] = TEXTS[part]["zh-hans"]
        data[f"{part}_en"] = TEXTS[part]["en"]
    return data


def report_form(**overrides: str) -> dict[str, str]:
    return {**REPORT, **overrides}


def record(client: Client, **overrides: Any) -> str:
    response = client.post(REGISTER, incident_form(**overrides))
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:3000]
    return str(response["Location"]).split("/")[3]


def step(client: Client, slug: str, action: str) -> Any:
    return client.post(page(slug), {"action": action})


def consulted(*addresses: str) -> None:
    """Persons who sent a consultation request (the category ``consultation`` holds them)."""
    for address in addresses:
        response = Client().post("/consultation/", consultation_data(email=address))
        assert response.status_code == HTTPStatus.FOUND


def deliver(tasks: str = "piwarden.incidents.") -> list[str]:
    """Run the queued tasks of ``tasks`` (by default the incident notices) as the worker would, oldest
    first; a run that fails (mail refused) is recorded as failed and its retry stays queued."""
    outcomes = []
    jobs = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path__startswith=tasks)
    for job in list(jobs.order_by("enqueued_at", "id")):
        job.delete()
        try:
            outcomes.append(import_string(job.task_path).call(*job.args_kwargs["args"], **job.args_kwargs["kwargs"]))
        except Exception as exc:  # noqa: BLE001  # the worker records any failure of a task
            outcomes.append(f"failed: {type(exc).__name__}")
    return outcomes


def deliver_alerts() -> list[str]:
    outcomes = []
    jobs = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path__startswith="piwarden.monitoring.")
    for job in list(jobs.order_by("enqueued_at", "id")):
        job.delete()
        outcomes.append(import_string(job.task_path).call(*job.args_kwargs["args"], **job.args_kwargs["kwargs"]))
    return outcomes
