from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "piwarden.incidents"
    label = "incidents"
    verbose_name = "Incidents"
