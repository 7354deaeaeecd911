from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "piwarden.api"
    label = "api"
    verbose_name = "JSON API"
