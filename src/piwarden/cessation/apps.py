from django.apps import AppConfig


class CessationConfig(AppConfig):
    name = "piwarden.cessation"
    label = "cessation"
    verbose_name = "Site cessation"
