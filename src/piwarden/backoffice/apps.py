from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "piwarden.backoffice"
    label = "backoffice"
    verbose_name = "Staff console"
